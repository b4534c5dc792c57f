//! Deciding a file's format from its first bytes together with its extension.
//!
//! Neither is trusted alone: a `.pdf` that is really an executable must not reach a parser
//! that expects text, and a file named `notes` that starts with `%PDF-` is still a PDF. Magic
//! bytes decide binary formats; the extension picks among text formats once the content is
//! known to be text.

use std::fmt;

use super::IngestError;
use super::extract::text::decode_text;

/// How many leading bytes [`detect`] looks at; pass at least this many when available.
pub const DETECT_HEAD_BYTES: usize = 8 * 1024;

/// Share of control characters (per mille) above which decoded content is called binary.
const MAX_CONTROL_PER_MILLE: usize = 20;

/// The formats ragd extracts text from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentFormat {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
    Csv,
    Json,
}

impl DocumentFormat {
    /// The MIME type recorded on the document.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain",
            Self::Markdown => "text/markdown",
            Self::Html => "text/html",
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Csv => "text/csv",
            Self::Json => "application/json",
        }
    }
}

impl DocumentFormat {
    /// The format a stored document's `content_type` names (the inverse of `content_type`).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        [
            Self::Text,
            Self::Markdown,
            Self::Html,
            Self::Pdf,
            Self::Docx,
            Self::Csv,
            Self::Json,
        ]
        .into_iter()
        .find(|format| format.content_type() == content_type)
    }
}

impl fmt::Display for DocumentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Markdown => "Markdown",
            Self::Html => "HTML",
            Self::Pdf => "PDF",
            Self::Docx => "DOCX",
            Self::Csv => "CSV",
            Self::Json => "JSON",
        })
    }
}

/// Decides the format of a file named `filename` (as the user sent it) whose content starts
/// with `head` (up to [`DETECT_HEAD_BYTES`]).
pub fn detect(filename: &str, head: &[u8]) -> Result<DocumentFormat, IngestError> {
    let extension = extension_of(filename);
    let extension = extension.as_deref().unwrap_or("");

    if let Some(format) = detect_binary(extension, head)? {
        return Ok(format);
    }
    if !looks_like_text(head) {
        return Err(unsupported(format!(
            "binary content{}",
            if extension.is_empty() {
                String::new()
            } else {
                format!(" in a .{extension} file")
            }
        )));
    }
    match extension {
        "md" | "markdown" | "mdown" | "mkd" => Ok(DocumentFormat::Markdown),
        "html" | "htm" | "xhtml" => Ok(DocumentFormat::Html),
        "csv" | "tsv" => Ok(DocumentFormat::Csv),
        "json" | "jsonl" | "ndjson" => Ok(DocumentFormat::Json),
        "txt" | "text" | "log" | "rst" | "adoc" | "org" | "tex" | "yaml" | "yml" | "toml"
        | "ini" | "cfg" => Ok(DocumentFormat::Text),
        "" if has_html_markers(head) => Ok(DocumentFormat::Html),
        "" => Ok(DocumentFormat::Text),
        other => Err(unsupported(format!(".{other} files"))),
    }
}

/// Formats recognised by their magic bytes; `Ok(None)` when the content is not one of them.
fn detect_binary(extension: &str, head: &[u8]) -> Result<Option<DocumentFormat>, IngestError> {
    const ZIP: &[u8] = b"PK\x03\x04";
    const OLE_COMPOUND: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";

    if head.starts_with(b"%PDF-") {
        return Ok(Some(DocumentFormat::Pdf));
    }
    if head.starts_with(ZIP) {
        return if extension == "docx" || contains(head, b"word/") {
            Ok(Some(DocumentFormat::Docx))
        } else {
            Err(unsupported("zip archives other than .docx".to_owned()))
        };
    }
    if head.starts_with(OLE_COMPOUND) {
        // Word wraps a password-protected .docx in an OLE compound file; a real .doc is the
        // legacy binary format.
        return if extension == "docx" {
            Err(IngestError::Encrypted {
                format: DocumentFormat::Docx,
            })
        } else {
            Err(unsupported("legacy Office (.doc, .xls) files".to_owned()))
        };
    }
    match extension {
        "pdf" => Err(IngestError::malformed(
            DocumentFormat::Pdf,
            "the file does not start with a PDF header",
        )),
        "docx" => Err(IngestError::malformed(
            DocumentFormat::Docx,
            "the file is not a zip archive",
        )),
        _ => Ok(None),
    }
}

/// True when `head` decodes (UTF-8, UTF-16 with BOM or Windows-1252) to text with hardly any
/// control characters. A truncated multi-byte character at the end of `head` is tolerated.
fn looks_like_text(head: &[u8]) -> bool {
    let is_utf16 = head.starts_with(b"\xFF\xFE") || head.starts_with(b"\xFE\xFF");
    if !is_utf16 && head.contains(&0) {
        return false;
    }
    let decoded = decode_text(trim_incomplete_utf8_tail(head));
    let total = decoded.chars().count();
    let controls = decoded
        .chars()
        .filter(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0C' | '\x1B'))
        .count();
    controls * 1000 <= total * MAX_CONTROL_PER_MILLE
}

/// `head` is a prefix of the file, so it may end inside a UTF-8 sequence; without this, valid
/// UTF-8 would be misread as Windows-1252.
fn trim_incomplete_utf8_tail(head: &[u8]) -> &[u8] {
    match std::str::from_utf8(head) {
        Err(error) if error.error_len().is_none() => &head[..error.valid_up_to()],
        _ => head,
    }
}

fn has_html_markers(head: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&head[..head.len().min(1024)]).to_ascii_lowercase();
    let start = start.trim_start_matches('\u{FEFF}').trim_start();
    ["<!doctype html", "<html", "<head", "<body"]
        .iter()
        .any(|marker| start.starts_with(marker))
}

fn extension_of(filename: &str) -> Option<String> {
    let name = filename.rsplit(['/', '\\']).next()?;
    let (stem, extension) = name.rsplit_once('.')?;
    (!stem.is_empty()).then(|| extension.trim().to_ascii_lowercase())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn unsupported(detail: String) -> IngestError {
    IngestError::Unsupported { detail }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide_binary_formats_whatever_the_name() {
        assert_eq!(detect("scan", b"%PDF-1.7\n").unwrap(), DocumentFormat::Pdf);
        assert_eq!(
            detect("report.docx", b"PK\x03\x04\x14\0").unwrap(),
            DocumentFormat::Docx
        );
        assert_eq!(
            detect("noext", b"PK\x03\x04....word/document.xml").unwrap(),
            DocumentFormat::Docx
        );
    }

    #[test]
    fn text_formats_follow_the_extension() {
        assert_eq!(
            detect("a.md", b"# Title").unwrap(),
            DocumentFormat::Markdown
        );
        assert_eq!(detect("a.HTM", b"<p>x</p>").unwrap(), DocumentFormat::Html);
        assert_eq!(detect("a.csv", b"a,b\n1,2").unwrap(), DocumentFormat::Csv);
        assert_eq!(
            detect("a.json", b"{\"a\":1}").unwrap(),
            DocumentFormat::Json
        );
        assert_eq!(detect("a.txt", b"hello").unwrap(), DocumentFormat::Text);
        assert_eq!(
            detect("page", b"  <!DOCTYPE html><html>").unwrap(),
            DocumentFormat::Html
        );
        assert_eq!(
            detect("notes", b"plain words").unwrap(),
            DocumentFormat::Text
        );
    }

    #[test]
    fn utf16_and_latin1_text_is_text() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("héllo".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(detect("a.txt", &utf16).unwrap(), DocumentFormat::Text);
        assert_eq!(
            detect("a.txt", b"caf\xE9 cr\xE8me").unwrap(),
            DocumentFormat::Text
        );
    }

    #[test]
    fn a_head_cut_inside_a_utf8_character_is_still_text() {
        let head = "ééé".as_bytes();
        assert_eq!(
            detect("a.txt", &head[..head.len() - 1]).unwrap(),
            DocumentFormat::Text
        );
    }

    #[test]
    fn binary_content_with_a_text_extension_is_unsupported() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(matches!(
            detect("photo.txt", png),
            Err(IngestError::Unsupported { .. })
        ));
        let noise: Vec<u8> = (0u8..=255).cycle().skip(1).take(600).collect();
        assert!(matches!(
            detect("a.md", &noise),
            Err(IngestError::Unsupported { .. })
        ));
    }

    #[test]
    fn unknown_types_are_unsupported() {
        assert!(matches!(
            detect("run.exe", b"MZ\x90\0"),
            Err(IngestError::Unsupported { .. })
        ));
        assert!(matches!(
            detect("a.xyz", b"text"),
            Err(IngestError::Unsupported { .. })
        ));
        assert!(matches!(
            detect("a.zip", b"PK\x03\x04\x14\0"),
            Err(IngestError::Unsupported { .. })
        ));
    }

    #[test]
    fn a_pdf_name_without_a_pdf_header_is_malformed() {
        assert!(matches!(
            detect("a.pdf", b"hello"),
            Err(IngestError::Malformed {
                format: DocumentFormat::Pdf,
                ..
            })
        ));
    }

    #[test]
    fn a_password_protected_docx_is_encrypted() {
        assert!(matches!(
            detect("secret.docx", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0"),
            Err(IngestError::Encrypted {
                format: DocumentFormat::Docx
            })
        ));
    }

    #[test]
    fn content_types_are_mime_types() {
        assert_eq!(DocumentFormat::Pdf.content_type(), "application/pdf");
        assert_eq!(DocumentFormat::Markdown.content_type(), "text/markdown");
    }
}
