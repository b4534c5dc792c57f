//! Token-aware chunking: splitting extracted text into overlapping pieces that fit the
//! embedding model, each remembering where it came from (offsets, page, heading path).
//!
//! Sizes are measured with a real tokenizer (tiktoken's cl100k), not characters, because the
//! embedding model's limit is in tokens. Markdown-shaped text goes through text-splitter's
//! Markdown splitter so that chunks break at section boundaries first.

use std::sync::OnceLock;

use text_splitter::{ChunkCharIndex, ChunkConfig, MarkdownSplitter, TextSplitter};
use tiktoken_rs::CoreBPE;

use super::extract::{ExtractedText, Heading, PageSpan};

/// How large chunks are and how much neighbours share, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSettings {
    pub max_tokens: usize,
    /// Tokens a chunk repeats from the end of the previous one, so that a sentence cut at a
    /// boundary is still whole in one of them.
    pub overlap: usize,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            overlap: 64,
        }
    }
}

impl ChunkSettings {
    /// Checks the settings; start-up calls this so a bad `CHUNK_TOKENS`/`CHUNK_OVERLAP` pair
    /// stops the process with a clear message.
    pub fn validate(&self) -> Result<(), ChunkSettingsError> {
        if self.max_tokens == 0 {
            return Err(ChunkSettingsError::ZeroSize);
        }
        if self.overlap >= self.max_tokens {
            return Err(ChunkSettingsError::OverlapNotSmaller {
                overlap: self.overlap,
                max_tokens: self.max_tokens,
            });
        }
        Ok(())
    }
}

/// Why chunk settings cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkSettingsError {
    #[error("chunk size (CHUNK_TOKENS) must be at least 1 token")]
    ZeroSize,
    #[error(
        "chunk overlap (CHUNK_OVERLAP = {overlap}) must be smaller than the chunk size \
         (CHUNK_TOKENS = {max_tokens})"
    )]
    OverlapNotSmaller { overlap: usize, max_tokens: usize },
}

/// A chunk ready to be embedded and stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDraft {
    /// Position in the document, from 0.
    pub index: u32,
    pub text: String,
    /// Character (Unicode scalar value) offsets of `text` in the extracted text.
    pub char_start: u32,
    pub char_end: u32,
    /// The page the chunk starts on, for paged formats.
    pub page: Option<u32>,
    /// The headings the chunk sits under, outermost first: `"Install > Linux"`.
    pub heading_path: Option<String>,
    pub token_count: u32,
}

/// Splits documents into chunks. Build it once (at start-up) and share it. The tokenizer and
/// splitters are built on first use, not at start-up: loading tiktoken's tables costs tens of
/// milliseconds and megabytes that a server which never ingests should not pay.
pub struct Chunker {
    settings: ChunkSettings,
    splitters: OnceLock<Splitters>,
}

/// The configured splitters over the process-wide tokenizer.
struct Splitters {
    plain: TextSplitter<&'static CoreBPE>,
    markdown: MarkdownSplitter<&'static CoreBPE>,
    tokenizer: &'static CoreBPE,
}

impl Splitters {
    fn new(settings: ChunkSettings) -> Self {
        let tokenizer = tiktoken_rs::cl100k_base_singleton();
        let config = || {
            let sized = || ChunkConfig::new(settings.max_tokens).with_sizer(tokenizer);
            // `ChunkSettings::validate` ran in `Chunker::new`, so the overlap always fits.
            sized()
                .with_overlap(settings.overlap)
                .unwrap_or_else(|_| sized())
        };
        Self {
            plain: TextSplitter::new(config()),
            markdown: MarkdownSplitter::new(config()),
            tokenizer,
        }
    }
}

impl Chunker {
    pub fn new(settings: ChunkSettings) -> Result<Self, ChunkSettingsError> {
        settings.validate()?;
        Ok(Self {
            settings,
            splitters: OnceLock::new(),
        })
    }

    fn splitters(&self) -> &Splitters {
        self.splitters.get_or_init(|| Splitters::new(self.settings))
    }

    /// Splits `doc` into chunks in document order. CPU-bound (it tokenizes the text several
    /// times): call it from a blocking context for large documents.
    pub fn chunk(&self, doc: &ExtractedText) -> Vec<ChunkDraft> {
        let splitters = self.splitters();
        let pieces: Vec<ChunkCharIndex<'_>> = if doc.markdown {
            splitters.markdown.chunk_char_indices(&doc.text).collect()
        } else {
            splitters.plain.chunk_char_indices(&doc.text).collect()
        };
        let mut pages = PageCursor::new(&doc.pages);
        let mut headings = HeadingTrail::new(&doc.headings);
        pieces
            .into_iter()
            .enumerate()
            .map(|(index, piece)| {
                let char_count = piece.chunk.chars().count();
                ChunkDraft {
                    index: saturating_u32(index),
                    text: piece.chunk.to_owned(),
                    char_start: saturating_u32(piece.char_offset),
                    char_end: saturating_u32(piece.char_offset + char_count),
                    page: pages.page_at(piece.byte_offset),
                    heading_path: headings.path_at(piece.byte_offset),
                    token_count: saturating_u32(
                        splitters.tokenizer.encode_ordinary(piece.chunk).len(),
                    ),
                }
            })
            .collect()
    }
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("tokenizer", &"cl100k_base")
            .finish_non_exhaustive()
    }
}

fn saturating_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Finds the page of increasing byte offsets in one pass over the page spans.
struct PageCursor<'a> {
    pages: &'a [PageSpan],
    next: usize,
}

impl<'a> PageCursor<'a> {
    fn new(pages: &'a [PageSpan]) -> Self {
        Self { pages, next: 0 }
    }

    /// The last page starting at or before `offset` (a chunk starting in the separator
    /// between two pages belongs to the earlier one; none comes before the first page).
    fn page_at(&mut self, offset: usize) -> Option<u32> {
        while self
            .pages
            .get(self.next)
            .is_some_and(|page| page.start <= offset)
        {
            self.next += 1;
        }
        self.next
            .checked_sub(1)
            .and_then(|last| self.pages.get(last))
            .map(|page| page.number)
    }
}

/// Tracks the open headings (a stack by level) while walking increasing byte offsets.
struct HeadingTrail<'a> {
    headings: &'a [Heading],
    next: usize,
    open: Vec<&'a Heading>,
}

impl<'a> HeadingTrail<'a> {
    fn new(headings: &'a [Heading]) -> Self {
        Self {
            headings,
            next: 0,
            open: Vec::new(),
        }
    }

    fn path_at(&mut self, offset: usize) -> Option<String> {
        while let Some(heading) = self.headings.get(self.next) {
            if heading.start > offset {
                break;
            }
            self.open.retain(|open| open.level < heading.level);
            self.open.push(heading);
            self.next += 1;
        }
        (!self.open.is_empty()).then(|| {
            self.open
                .iter()
                .map(|heading| heading.title.as_str())
                .collect::<Vec<_>>()
                .join(" > ")
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::services::ingest::DocumentFormat;
    use crate::services::ingest::extract::{ExtractLimits, extract};

    fn chunker(max_tokens: usize, overlap: usize) -> Chunker {
        Chunker::new(ChunkSettings {
            max_tokens,
            overlap,
        })
        .unwrap()
    }

    fn sentences(count: usize, topic: &str) -> String {
        (0..count)
            .map(|i| format!("Sentence {i} explains {topic} in plain words."))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn chars_slice(text: &str, start: u32, end: u32) -> String {
        text.chars()
            .skip(start as usize)
            .take((end - start) as usize)
            .collect()
    }

    #[test]
    fn settings_with_overlap_not_below_the_size_are_refused() {
        let error = Chunker::new(ChunkSettings {
            max_tokens: 64,
            overlap: 64,
        })
        .unwrap_err();
        assert!(error.to_string().contains("CHUNK_OVERLAP"));
        assert_eq!(
            ChunkSettings {
                max_tokens: 0,
                overlap: 0
            }
            .validate(),
            Err(ChunkSettingsError::ZeroSize)
        );
        assert!(ChunkSettings::default().validate().is_ok());
    }

    #[test]
    fn offsets_are_characters_that_map_back_to_the_exact_text() {
        let text = format!("Überschrift — naïve café. {}", sentences(80, "ünïcödé"));
        let doc = ExtractedText {
            text: text.clone(),
            ..ExtractedText::default()
        };
        let chunks = chunker(40, 8).chunk(&doc);
        assert!(chunks.len() > 3);
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.index as usize, i);
            assert_eq!(
                chars_slice(&text, chunk.char_start, chunk.char_end),
                chunk.text
            );
        }
    }

    #[test]
    fn token_counts_stay_within_the_limit_and_neighbours_overlap() {
        let doc = ExtractedText {
            text: sentences(120, "overlap"),
            ..ExtractedText::default()
        };
        let chunks = chunker(50, 20).chunk(&doc);
        assert!(chunks.len() > 3);
        for chunk in &chunks {
            assert!(chunk.token_count <= 50, "{chunk:?}");
            assert!(chunk.token_count > 0);
        }
        for pair in chunks.windows(2) {
            assert!(
                pair[1].char_start < pair[0].char_end,
                "no overlap between {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn chunks_without_overlap_do_not_share_text() {
        let doc = ExtractedText {
            text: sentences(120, "separation"),
            ..ExtractedText::default()
        };
        let chunks = chunker(50, 0).chunk(&doc);
        for pair in chunks.windows(2) {
            assert!(pair[1].char_start >= pair[0].char_end);
        }
    }

    #[test]
    fn markdown_chunks_carry_their_heading_path() {
        let source = format!(
            "# Install\n\n{}\n\n## Linux\n\n{}\n\n## macOS\n\n{}\n\n# Usage\n\n{}\n",
            sentences(3, "installing"),
            sentences(12, "linux"),
            sentences(12, "macos"),
            sentences(3, "usage")
        );
        let doc = extract(
            DocumentFormat::Markdown,
            source.as_bytes(),
            &ExtractLimits::default(),
        )
        .unwrap();
        let chunks = chunker(60, 0).chunk(&doc);
        let path_of = |needle: &str| {
            chunks
                .iter()
                .find(|chunk| chunk.text.contains(needle))
                .and_then(|chunk| chunk.heading_path.clone())
        };
        assert_eq!(
            path_of("explains linux").as_deref(),
            Some("Install > Linux")
        );
        assert_eq!(
            path_of("explains macos").as_deref(),
            Some("Install > macOS")
        );
        assert_eq!(path_of("explains usage").as_deref(), Some("Usage"));
        assert!(chunks.iter().all(|chunk| chunk.page.is_none()));
    }

    #[test]
    fn chunks_know_the_page_they_start_on() {
        let first = sentences(30, "page one");
        let second = sentences(30, "page two");
        let text = format!("{first}\n\n{second}");
        let doc = ExtractedText {
            pages: vec![
                PageSpan {
                    number: 1,
                    start: 0,
                    end: first.len(),
                },
                PageSpan {
                    number: 2,
                    start: first.len() + 2,
                    end: text.len(),
                },
            ],
            text,
            ..ExtractedText::default()
        };
        let chunks = chunker(40, 0).chunk(&doc);
        let first_page_two = chunks
            .iter()
            .position(|chunk| chunk.text.starts_with("Sentence 0 explains page two"))
            .unwrap();
        assert!(chunks[..first_page_two].iter().all(|c| c.page == Some(1)));
        assert!(chunks[first_page_two..].iter().all(|c| c.page == Some(2)));
    }

    #[test]
    fn an_empty_document_has_no_chunks() {
        assert!(chunker(10, 2).chunk(&ExtractedText::default()).is_empty());
    }
}
