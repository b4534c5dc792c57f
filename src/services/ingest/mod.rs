//! Documents end to end: upload (streamed to disk), type detection, text extraction per
//! format, token-aware chunking, embedding and storage, run by durable background workers.
//!
//! [`Ingest`] is the service the routes and the CLI call; [`worker`] runs the queue; the
//! [`pipeline`] processes one document. Extraction errors are [`IngestError`]; its `Display`
//! text becomes the failed document's `error`, so it is written for the document's owner.

pub mod chunk;
pub mod detect;
pub mod extract;
pub mod filename;
mod metrics;
pub mod pipeline;
mod service;
pub mod upload;
pub mod worker;

pub use service::Ingest;
pub use upload::{UploadError, Uploaded};
pub use worker::{IngestWorkers, WorkerSettings};

pub use chunk::{ChunkDraft, ChunkSettings, ChunkSettingsError, Chunker};
pub use detect::{DETECT_HEAD_BYTES, DocumentFormat, detect};
pub use extract::{ExtractLimits, ExtractedText, Heading, PageSpan, extract, extract_blocking};
pub use filename::sanitize_filename;

/// Why a document could not be turned into text.
///
/// The variants are the decisions a caller makes: `Unsupported` answers 415 at upload, the
/// others fail the document with their message (none of them is worth retrying, except
/// perhaps `Timeout` on a busy machine).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file type is not one ragd extracts text from.
    #[error("unsupported file type: {detail}")]
    Unsupported { detail: String },

    /// The file claims a format but its content does not parse as that format.
    #[error("malformed {format} file: {reason}")]
    Malformed {
        format: DocumentFormat,
        reason: String,
    },

    /// The file is protected by a password ragd does not have.
    #[error("the {format} file is encrypted; upload a copy without a password")]
    Encrypted { format: DocumentFormat },

    /// A bound against hostile or oversized input was crossed (zip bomb, page count...).
    #[error("the document is too large: {what} exceeds the limit of {limit}")]
    TooLarge { what: &'static str, limit: u64 },

    /// Extraction ran past its time budget.
    #[error("text extraction took longer than {seconds} s")]
    Timeout { seconds: u64 },

    /// The file parsed but holds no text (e.g. a scanned PDF without a text layer).
    #[error("the document contains no extractable text")]
    Empty,
}

impl IngestError {
    /// A stable, low-cardinality label for metrics (`failures by reason`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unsupported { .. } => "unsupported",
            Self::Malformed { .. } => "malformed",
            Self::Encrypted { .. } => "encrypted",
            Self::TooLarge { .. } => "too_large",
            Self::Timeout { .. } => "timeout",
            Self::Empty => "empty",
        }
    }

    pub(crate) fn malformed(format: DocumentFormat, reason: impl std::fmt::Display) -> Self {
        Self::Malformed {
            format,
            reason: reason.to_string(),
        }
    }
}
