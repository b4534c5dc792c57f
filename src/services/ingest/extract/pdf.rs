//! PDF: text page by page (pdf-extract over lopdf), so chunks keep their page numbers.
//!
//! pdf-extract's `extract_text_from_mem_by_pages` would read every page before we could count
//! them and stops silently at the first page it cannot read. Driving its per-page renderer
//! ourselves bounds the page count before any text work, checks the deadline between pages,
//! and keeps the pages after a damaged one.

use pdf_extract::{Document, PlainTextOutput, output_doc_page};

use super::text::strip_control_characters;
use super::{Deadline, ExtractLimits, ExtractedText, PageSpan};
use crate::services::ingest::{DocumentFormat, IngestError};

/// Between pages, so that a chunk never runs two pages' words together.
const PAGE_SEPARATOR: &str = "\n\n";

pub(super) fn extract_pdf(
    bytes: &[u8],
    limits: &ExtractLimits,
    deadline: &Deadline,
) -> Result<ExtractedText, IngestError> {
    let document = Document::load_mem(bytes).map_err(load_error)?;
    // lopdf already opened documents whose user password is empty; still encrypted means a
    // password is needed.
    if document.is_encrypted() {
        return Err(encrypted());
    }
    let pages = document.get_pages();
    if pages.len() > limits.max_pages as usize {
        return Err(IngestError::TooLarge {
            what: "page count",
            limit: u64::from(limits.max_pages),
        });
    }

    let mut text = String::new();
    let mut spans = Vec::with_capacity(pages.len());
    let mut first_failure: Option<String> = None;
    for &number in pages.keys() {
        deadline.check()?;
        let page_text = match page_text(&document, number) {
            Ok(page_text) => page_text,
            Err(failure) => {
                first_failure.get_or_insert(format!("page {number}: {failure}"));
                continue;
            }
        };
        if !text.is_empty() {
            text.push_str(PAGE_SEPARATOR);
        }
        let start = text.len();
        text.push_str(&page_text);
        spans.push(PageSpan {
            number,
            start,
            end: text.len(),
        });
    }
    if spans.is_empty()
        && let Some(failure) = first_failure
    {
        return Err(IngestError::malformed(DocumentFormat::Pdf, failure));
    }
    Ok(ExtractedText {
        text,
        pages: spans,
        headings: Vec::new(),
        markdown: false,
    })
}

fn page_text(document: &Document, number: u32) -> Result<String, pdf_extract::OutputError> {
    let mut raw = String::new();
    output_doc_page(document, &mut PlainTextOutput::new(&mut raw), number)?;
    Ok(strip_control_characters(raw.trim()))
}

fn load_error(error: pdf_extract::Error) -> IngestError {
    match error {
        pdf_extract::Error::Decryption(_) | pdf_extract::Error::InvalidPassword => encrypted(),
        other => IngestError::malformed(DocumentFormat::Pdf, other),
    }
}

fn encrypted() -> IngestError {
    IngestError::Encrypted {
        format: DocumentFormat::Pdf,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A minimal valid PDF: one Helvetica text object per page and a byte-exact xref table.
    /// `extra_trailer` lets a test add entries such as `/Encrypt`.
    fn build_pdf(pages: &[&str], extra_objects: &[&str], extra_trailer: &str) -> Vec<u8> {
        let page_count = pages.len();
        let font_id = 3 + 2 * page_count;
        let mut objects: Vec<String> = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            format!(
                "<< /Type /Pages /Kids [{}] /Count {page_count} >>",
                (0..page_count)
                    .map(|i| format!("{} 0 R", 3 + 2 * i))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ];
        for (i, line) in pages.iter().enumerate() {
            let content = format!("BT /F1 12 Tf 72 720 Td ({line}) Tj ET");
            objects.push(format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
                 /Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {} 0 R >>",
                4 + 2 * i
            ));
            objects.push(format!(
                "<< /Length {} >>\nstream\n{content}\nendstream",
                content.len()
            ));
        }
        objects.push(
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_owned(),
        );
        objects.extend(extra_objects.iter().map(|object| (*object).to_owned()));

        let mut pdf = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            offsets.push(pdf.len());
            pdf.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
        }
        let xref_at = pdf.len();
        let mut xref = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for offset in offsets {
            xref.push_str(&format!("{offset:010} 00000 n \n"));
        }
        pdf.extend_from_slice(xref.as_bytes());
        pdf.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R {extra_trailer} >>\nstartxref\n{xref_at}\n%%EOF\n",
                objects.len() + 1
            )
            .as_bytes(),
        );
        pdf
    }

    fn extract(bytes: &[u8], limits: &ExtractLimits) -> Result<ExtractedText, IngestError> {
        extract_pdf(bytes, limits, &Deadline::after(Duration::from_secs(60)))
    }

    #[test]
    fn text_is_extracted_per_page_with_page_numbers() {
        let pdf = build_pdf(
            &[
                "The quick brown fox jumps.",
                "Second page holds the answer.",
            ],
            &[],
            "",
        );
        let extracted = extract(&pdf, &ExtractLimits::default()).unwrap();
        assert_eq!(extracted.pages.len(), 2);
        let page = |n: usize| {
            let span = extracted.pages[n];
            (span.number, &extracted.text[span.start..span.end])
        };
        assert_eq!(page(0).0, 1);
        assert!(
            page(0).1.contains("The quick brown fox jumps."),
            "{:?}",
            page(0)
        );
        assert_eq!(page(1).0, 2);
        assert!(
            page(1).1.contains("Second page holds the answer."),
            "{:?}",
            page(1)
        );
    }

    #[test]
    fn more_pages_than_the_limit_is_too_large() {
        let pdf = build_pdf(&["one", "two"], &[], "");
        let limits = ExtractLimits {
            max_pages: 1,
            ..ExtractLimits::default()
        };
        assert!(matches!(
            extract(&pdf, &limits),
            Err(IngestError::TooLarge {
                what: "page count",
                ..
            })
        ));
    }

    #[test]
    fn garbage_after_a_pdf_header_is_malformed() {
        let result = extract(
            b"%PDF-1.4\nthis is not a pdf at all",
            &ExtractLimits::default(),
        );
        assert!(
            matches!(
                result,
                Err(IngestError::Malformed {
                    format: DocumentFormat::Pdf,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn a_truncated_pdf_never_panics() {
        let pdf = build_pdf(&["The quick brown fox jumps."], &[], "");
        for cut in (0..pdf.len()).step_by(7) {
            let _ = extract(&pdf[..cut], &ExtractLimits::default());
        }
    }

    #[test]
    fn a_pdf_that_needs_a_password_is_encrypted() {
        // Standard security handler, RC4 40-bit; the /U entry does not match the empty
        // password, so a reader needs the real one.
        let encrypt = "<< /Filter /Standard /V 1 /R 2 /Length 40 /P -4 \
                       /O <28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A> \
                       /U <1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF1234567890ABCDEF> >>";
        let pdf = build_pdf(
            &["secret"],
            &[encrypt],
            "/Encrypt 6 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>]",
        );
        let result = extract(&pdf, &ExtractLimits::default());
        assert!(
            matches!(
                result,
                Err(IngestError::Encrypted {
                    format: DocumentFormat::Pdf
                })
            ),
            "{result:?}"
        );
    }
}
