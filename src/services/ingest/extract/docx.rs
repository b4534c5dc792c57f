//! DOCX: paragraphs and headings from `word/document.xml`, read with zip + quick-xml.
//!
//! A DOCX is a zip archive, and a zip archive can inflate a few kilobytes into gigabytes. The
//! entry count is bounded before reading, the declared size is checked, and the inflated bytes
//! are read through `take` so that a lying header cannot get past the limit either.

use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use zip::CompressionMethod;
use zip::ZipArchive;
use zip::result::ZipError;

use super::{Deadline, ExtractLimits, ExtractedText, SectionWriter};
use crate::services::ingest::{DocumentFormat, IngestError};

const DOCUMENT_PART: &str = "word/document.xml";

/// How many XML events pass between deadline checks (a check reads the clock).
const EVENTS_PER_DEADLINE_CHECK: usize = 4096;

pub(super) fn extract_docx(
    bytes: &[u8],
    limits: &ExtractLimits,
    deadline: &Deadline,
) -> Result<ExtractedText, IngestError> {
    let xml = read_document_part(bytes, limits)?;
    let xml = std::str::from_utf8(&xml).map_err(|_| malformed("document.xml is not UTF-8"))?;
    parse_document(xml, deadline)
}

fn read_document_part(bytes: &[u8], limits: &ExtractLimits) -> Result<Vec<u8>, IngestError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    if archive.len() > limits.max_archive_entries {
        return Err(IngestError::TooLarge {
            what: "zip entry count",
            limit: limits.max_archive_entries as u64,
        });
    }
    let entry = archive
        .by_name(DOCUMENT_PART)
        .map_err(|error| match error {
            ZipError::FileNotFound => malformed("no word/document.xml: not a Word document"),
            other => zip_error(other),
        })?;
    if entry.encrypted() {
        return Err(IngestError::Encrypted {
            format: DocumentFormat::Docx,
        });
    }
    if !matches!(
        entry.compression(),
        CompressionMethod::Deflated | CompressionMethod::Stored
    ) {
        return Err(malformed(
            "document.xml uses an unsupported compression method",
        ));
    }
    let too_large = IngestError::TooLarge {
        what: "decompressed size (bytes)",
        limit: limits.max_decompressed_bytes,
    };
    if entry.size() > limits.max_decompressed_bytes {
        return Err(too_large);
    }
    let mut xml = Vec::new();
    entry
        .take(limits.max_decompressed_bytes.saturating_add(1))
        .read_to_end(&mut xml)
        .map_err(|error| malformed(format!("document.xml cannot be read: {error}")))?;
    if xml.len() as u64 > limits.max_decompressed_bytes {
        return Err(too_large);
    }
    Ok(xml)
}

/// The paragraph being read: its heading level (from its style) and its text so far.
#[derive(Default)]
struct Paragraph {
    heading_level: Option<u8>,
    text: String,
}

fn parse_document(xml: &str, deadline: &Deadline) -> Result<ExtractedText, IngestError> {
    let mut reader = Reader::from_str(xml);
    let mut writer = SectionWriter::default();
    let mut paragraph = Paragraph::default();
    let mut in_text_run = false;
    let mut events = 0usize;
    loop {
        events += 1;
        if events.is_multiple_of(EVENTS_PER_DEADLINE_CHECK) {
            deadline.check()?;
        }
        let event = reader
            .read_event()
            .map_err(|error| malformed(format!("document.xml: {error}")))?;
        match event {
            Event::Start(element) => match element.local_name().as_ref() {
                "p" => paragraph = Paragraph::default(),
                "t" => in_text_run = true,
                other => apply_property(other, &element, &mut paragraph),
            },
            Event::Empty(element) => match element.local_name().as_ref() {
                "tab" => paragraph.text.push('\t'),
                "br" | "cr" => paragraph.text.push('\n'),
                other => apply_property(other, &element, &mut paragraph),
            },
            Event::End(element) => match element.local_name().as_ref() {
                "t" => in_text_run = false,
                "p" => flush(&mut writer, std::mem::take(&mut paragraph)),
                _ => {}
            },
            Event::Text(content) if in_text_run => paragraph.text.push_str(&content.html_content()),
            Event::CData(content) if in_text_run => paragraph.text.push_str(&content),
            Event::GeneralRef(reference) if in_text_run => {
                paragraph.text.push(resolve_reference(&reference)?)
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(writer.finish())
}

/// Paragraph properties that make a heading: a `Heading1`..`Heading9` or `Title` style, or an
/// explicit outline level (what Word uses when the style names are localised).
fn apply_property(local_name: &str, element: &BytesStart<'_>, paragraph: &mut Paragraph) {
    let value = || {
        element
            .attributes()
            .flatten()
            .find(|attribute| attribute.key.local_name().as_ref() == "val")
            .map(|attribute| attribute.value.into_owned())
    };
    match local_name {
        "pStyle" => {
            if let Some(level) = value().as_deref().and_then(heading_level_of_style) {
                paragraph.heading_level = Some(level);
            }
        }
        "outlineLvl" => {
            if let Some(level) = value()
                .and_then(|v| v.parse::<u8>().ok())
                .filter(|l| *l < 9)
            {
                paragraph.heading_level.get_or_insert(level + 1);
            }
        }
        _ => {}
    }
}

fn heading_level_of_style(style: &str) -> Option<u8> {
    let style = style.to_ascii_lowercase();
    if style == "title" {
        return Some(1);
    }
    let level: u8 = style.strip_prefix("heading")?.trim().parse().ok()?;
    (1..=9).contains(&level).then_some(level)
}

fn flush(writer: &mut SectionWriter, paragraph: Paragraph) {
    match paragraph.heading_level {
        Some(level) => writer.heading(level, &paragraph.text),
        None => writer.paragraph(&paragraph.text),
    }
}

/// `&amp;` and friends, and character references; DOCX never declares other entities.
fn resolve_reference(reference: &BytesRef<'_>) -> Result<char, IngestError> {
    if let Some(character) = reference
        .resolve_char_ref()
        .map_err(|error| malformed(format!("document.xml: {error}")))?
    {
        return Ok(character);
    }
    match reference.html_content().as_ref() {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(malformed(format!("document.xml: unknown entity &{other};"))),
    }
}

fn zip_error(error: ZipError) -> IngestError {
    match error {
        ZipError::InvalidPassword => IngestError::Encrypted {
            format: DocumentFormat::Docx,
        },
        other => malformed(other),
    }
}

fn malformed(reason: impl std::fmt::Display) -> IngestError {
    IngestError::malformed(DocumentFormat::Docx, reason)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use zip::write::{SimpleFileOptions, ZipWriter};

    use super::*;

    /// A DOCX with the given `word/document.xml` body, written with the zip crate.
    fn build_docx(body: &str) -> Vec<u8> {
        let document = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        );
        build_zip(&[
            ("[Content_Types].xml", "<Types/>"),
            ("word/document.xml", &document),
        ])
    }

    fn build_zip(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for (name, content) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn paragraph(style: Option<&str>, text: &str) -> String {
        let properties = style
            .map(|style| format!(r#"<w:pPr><w:pStyle w:val="{style}"/></w:pPr>"#))
            .unwrap_or_default();
        format!(r#"<w:p>{properties}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
    }

    fn extract(bytes: &[u8], limits: &ExtractLimits) -> Result<ExtractedText, IngestError> {
        extract_docx(bytes, limits, &Deadline::after(Duration::from_secs(60)))
    }

    #[test]
    fn paragraphs_and_headings_are_extracted() {
        let body = [
            paragraph(Some("Title"), "Field guide"),
            paragraph(Some("Heading1"), "Install"),
            paragraph(None, "The quick brown fox &amp; the lazy dog."),
            paragraph(Some("Heading2"), "Linux"),
            r#"<w:p><w:r><w:t>Copy</w:t></w:r><w:r><w:tab/><w:t> the binary.</w:t></w:r></w:p>"#
                .to_owned(),
        ]
        .concat();
        let extracted = extract(&build_docx(&body), &ExtractLimits::default()).unwrap();
        assert!(
            extracted
                .text
                .contains("The quick brown fox & the lazy dog."),
            "{}",
            extracted.text
        );
        assert!(
            extracted.text.contains("Copy\t the binary."),
            "{}",
            extracted.text
        );
        let titles: Vec<(u8, &str)> = extracted
            .headings
            .iter()
            .map(|heading| (heading.level, heading.title.as_str()))
            .collect();
        assert_eq!(titles, [(1, "Field guide"), (1, "Install"), (2, "Linux")]);
        let linux = &extracted.headings[2];
        assert!(extracted.text[linux.start..].starts_with("## Linux\n\nCopy"));
    }

    #[test]
    fn a_truncated_docx_is_malformed() {
        let docx = build_docx(&paragraph(None, "The quick brown fox."));
        let truncated = &docx[..docx.len() / 2];
        assert!(matches!(
            extract(truncated, &ExtractLimits::default()),
            Err(IngestError::Malformed {
                format: DocumentFormat::Docx,
                ..
            })
        ));
    }

    #[test]
    fn a_zip_without_a_document_part_is_malformed() {
        let zip = build_zip(&[("word/other.xml", "<x/>")]);
        assert!(matches!(
            extract(&zip, &ExtractLimits::default()),
            Err(IngestError::Malformed { .. })
        ));
    }

    #[test]
    fn a_zip_bomb_is_too_large() {
        let limit = 1024 * 1024;
        let filler = paragraph(None, &"a".repeat(1000)).repeat(3 * 1024);
        let docx = build_docx(&filler);
        assert!(docx.len() < 64 * 1024, "the bomb should compress well");
        let limits = ExtractLimits {
            max_decompressed_bytes: limit,
            ..ExtractLimits::default()
        };
        assert!(matches!(
            extract(&docx, &limits),
            Err(IngestError::TooLarge {
                what: "decompressed size (bytes)",
                ..
            })
        ));
    }

    #[test]
    fn too_many_entries_is_too_large() {
        let docx = build_docx(&paragraph(None, "x"));
        let limits = ExtractLimits {
            max_archive_entries: 1,
            ..ExtractLimits::default()
        };
        assert!(matches!(
            extract(&docx, &limits),
            Err(IngestError::TooLarge {
                what: "zip entry count",
                ..
            })
        ));
    }

    #[test]
    fn broken_xml_is_malformed() {
        let docx = build_docx("<w:p><w:r><w:t>unclosed</w:r></w:p>");
        assert!(matches!(
            extract(&docx, &ExtractLimits::default()),
            Err(IngestError::Malformed { .. })
        ));
    }
}
