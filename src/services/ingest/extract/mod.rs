//! Text extraction: one file per format, all producing an [`ExtractedText`].
//!
//! Parsers here face hostile input, so every format is bounded by [`ExtractLimits`], and
//! [`extract_blocking`] runs them off the async runtime with a deadline and turns a parser
//! panic into a failed document instead of a crashed worker.

mod docx;
mod html;
mod markdown;
mod pdf;
pub(crate) mod text;

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use super::IngestError;
use super::detect::DocumentFormat;

/// Bounds that keep one hostile document from exhausting the machine.
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    /// Most pages read from a PDF; more fails the document as `TooLarge`.
    pub max_pages: u32,
    /// Most bytes a compressed container (DOCX) may inflate to: the zip-bomb bound.
    pub max_decompressed_bytes: u64,
    /// Most entries a zip container may list.
    pub max_archive_entries: usize,
    /// Wall-clock budget for one document's extraction.
    pub timeout: Duration,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_pages: 5_000,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_archive_entries: 10_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A document's text with the structure the chunker needs.
///
/// All offsets are byte offsets into `text` and fall on character boundaries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtractedText {
    pub text: String,
    /// Where each page's text lies; empty for formats without pages.
    pub pages: Vec<PageSpan>,
    /// Section headings in document order.
    pub headings: Vec<Heading>,
    /// True when `text` is Markdown (headings are ATX `#` lines), so the chunker can split at
    /// section boundaries. HTML and DOCX headings are written this way too.
    pub markdown: bool,
}

/// The byte range `start..end` of `text` that came from page `number` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSpan {
    pub number: u32,
    pub start: usize,
    pub end: usize,
}

/// A section heading: its level (1 = top), its title, and the byte offset where its line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    pub level: u8,
    pub title: String,
    pub start: usize,
}

/// Extracts the text of a `format` document. CPU-bound: call it from a blocking context, or
/// use [`extract_blocking`].
pub fn extract(
    format: DocumentFormat,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Result<ExtractedText, IngestError> {
    let deadline = Deadline::after(limits.timeout);
    let extracted = match format {
        DocumentFormat::Text | DocumentFormat::Csv | DocumentFormat::Json => {
            text::extract_plain(bytes)
        }
        DocumentFormat::Markdown => markdown::extract_markdown(bytes),
        DocumentFormat::Html => html::extract_html(bytes)?,
        DocumentFormat::Pdf => pdf::extract_pdf(bytes, limits, &deadline)?,
        DocumentFormat::Docx => docx::extract_docx(bytes, limits, &deadline)?,
    };
    if extracted.text.trim().is_empty() {
        return Err(IngestError::Empty);
    }
    Ok(extracted)
}

/// Runs [`extract`] on the blocking pool under `limits.timeout`.
///
/// A panic inside a parser (pdf-extract and lopdf can panic on hostile input) becomes
/// `Malformed`. On timeout the caller gets `Timeout` at once; the parser's thread stops at its
/// next deadline check (between PDF pages, every few thousand DOCX events).
pub async fn extract_blocking(
    format: DocumentFormat,
    bytes: Vec<u8>,
    limits: ExtractLimits,
) -> Result<ExtractedText, IngestError> {
    let timeout = limits.timeout;
    run_guarded(format, timeout, move || extract(format, &bytes, &limits)).await
}

async fn run_guarded<F>(
    format: DocumentFormat,
    timeout: Duration,
    job: F,
) -> Result<ExtractedText, IngestError>
where
    F: FnOnce() -> Result<ExtractedText, IngestError> + Send + 'static,
{
    // catch_unwind inside the task (not only the JoinError) so the panic payload's message
    // reaches the document's error.
    let task = tokio::task::spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(job)));
    match tokio::time::timeout(timeout, task).await {
        Err(_elapsed) => Err(IngestError::Timeout {
            seconds: timeout.as_secs(),
        }),
        Ok(Err(join_error)) => Err(IngestError::malformed(
            format,
            format!("the parser stopped: {join_error}"),
        )),
        Ok(Ok(Err(panic))) => Err(IngestError::malformed(
            format,
            format!("the parser failed: {}", panic_message(panic.as_ref())),
        )),
        Ok(Ok(Ok(result))) => result,
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unexpected internal error")
}

/// A point in time after which a long extraction gives up; checked between units of work.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    pub(crate) fn check(&self) -> Result<(), IngestError> {
        if Instant::now() > self.at {
            Err(IngestError::Timeout {
                seconds: self.budget.as_secs(),
            })
        } else {
            Ok(())
        }
    }
}

/// Builds Markdown-shaped text from paragraphs and headings, recording heading offsets. Shared
/// by the formats whose structure is not already Markdown (HTML, DOCX).
#[derive(Debug, Default)]
pub(crate) struct SectionWriter {
    text: String,
    headings: Vec<Heading>,
}

impl SectionWriter {
    pub(crate) fn heading(&mut self, level: u8, title: &str) {
        let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
        if title.is_empty() {
            return;
        }
        self.separate();
        let level = level.clamp(1, 9);
        self.headings.push(Heading {
            level,
            title: title.clone(),
            start: self.text.len(),
        });
        // Markdown knows six levels; deeper ones still split as the deepest.
        self.text.push_str(&"#".repeat(usize::from(level.min(6))));
        self.text.push(' ');
        self.text.push_str(&title);
    }

    pub(crate) fn paragraph(&mut self, body: &str) {
        let body = body.trim_end();
        if body.trim().is_empty() {
            return;
        }
        self.separate();
        self.text.push_str(body);
    }

    fn separate(&mut self) {
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
    }

    pub(crate) fn finish(self) -> ExtractedText {
        ExtractedText {
            text: self.text,
            pages: Vec::new(),
            headings: self.headings,
            markdown: true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_parser_becomes_malformed() {
        let result = run_guarded(DocumentFormat::Pdf, Duration::from_secs(30), || {
            panic!("index out of bounds in a hostile file")
        })
        .await;
        match result {
            Err(IngestError::Malformed { format, reason }) => {
                assert_eq!(format, DocumentFormat::Pdf);
                assert!(reason.contains("index out of bounds"), "{reason}");
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_parser_that_never_finishes_times_out() {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let result = run_guarded(DocumentFormat::Pdf, Duration::from_millis(20), move || {
            let _ = wait.recv();
            Ok(ExtractedText::default())
        })
        .await;
        drop(release);
        assert!(matches!(result, Err(IngestError::Timeout { .. })));
    }

    #[tokio::test]
    async fn extract_blocking_returns_the_text() {
        let extracted = extract_blocking(
            DocumentFormat::Text,
            b"hello world".to_vec(),
            ExtractLimits::default(),
        )
        .await
        .unwrap();
        assert_eq!(extracted.text, "hello world");
    }

    #[test]
    fn a_document_without_text_is_empty() {
        let result = extract(DocumentFormat::Text, b" \n\t ", &ExtractLimits::default());
        assert!(matches!(result, Err(IngestError::Empty)));
    }

    #[test]
    fn the_section_writer_records_heading_offsets() {
        let mut writer = SectionWriter::default();
        writer.heading(1, " Install ");
        writer.paragraph("Run it.");
        writer.heading(2, "Linux");
        let extracted = writer.finish();
        assert_eq!(extracted.text, "# Install\n\nRun it.\n\n## Linux");
        let linux = &extracted.headings[1];
        assert_eq!(&extracted.text[linux.start..], "## Linux");
        assert_eq!(linux.title, "Linux");
    }
}
