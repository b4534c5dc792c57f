//! Receiving an upload: the body is streamed to a file in the uploads directory as it arrives
//! (never held whole in memory), hashed with SHA-256 and measured on the way, its type decided
//! from its first bytes and its name; then the document and its ingestion job are created.
//!
//! The file is written under the new document's UUID, so the user's filename never reaches the
//! filesystem. Until the document row exists the file is owned by a guard that deletes it on
//! every exit: an error, an oversize body, a duplicate, a client that goes away mid-upload.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{DETECT_HEAD_BYTES, DocumentFormat, IngestError, detect, sanitize_filename};
use crate::store::{Created, Document, NewDocument, Store, StoreError};

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Past `MAX_UPLOAD_MB`; reading stopped and the partial file is gone. HTTP 413.
    #[error("the file is larger than the limit of {limit_bytes} bytes")]
    TooLarge { limit_bytes: u64 },
    /// Not a format ragd extracts text from. HTTP 415.
    #[error("{0}")]
    Unsupported(IngestError),
    /// The request itself is wrong (no file, bad metadata, broken multipart). HTTP 400/422.
    #[error("{0}")]
    BadRequest(String),
    /// The body stopped arriving (client gone, network error).
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    /// The uploads directory cannot be written. HTTP 500.
    #[error("cannot store the upload: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl UploadError {
    /// A stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Unsupported(_) => "unsupported",
            Self::BadRequest(_) => "bad_request",
            Self::Interrupted(_) => "interrupted",
            Self::Io(_) => "io",
            Self::Store(_) => "store",
        }
    }
}

/// A file fully received into the uploads directory, not yet a document.
pub struct ReceivedFile {
    guard: PartialFile,
    id: Uuid,
    filename: String,
    format: DocumentFormat,
    size_bytes: u64,
    sha256: String,
}

impl ReceivedFile {
    pub fn filename(&self) -> &str {
        &self.filename
    }
}

/// The answer to an upload.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub document: Document,
    /// False when the same user had already uploaded the same bytes.
    pub created: bool,
}

/// Streams `body` into `uploads_dir`, enforcing `limit_bytes` as it goes. `raw_filename` is
/// what the client sent; it is sanitized and, with the first bytes, decides the type.
pub async fn receive_file<S, E>(
    uploads_dir: &Path,
    raw_filename: &str,
    limit_bytes: u64,
    mut body: S,
) -> Result<ReceivedFile, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let filename = sanitize_filename(raw_filename);
    tokio::fs::create_dir_all(uploads_dir).await?;
    let id = Uuid::now_v7();
    let guard = PartialFile::new(uploads_dir.join(id.to_string()));
    let mut file = tokio::fs::File::create_new(guard.path()).await?;
    let mut hasher = Sha256::new();
    let mut head: Vec<u8> = Vec::with_capacity(DETECT_HEAD_BYTES);
    let mut format = None;
    let mut size: u64 = 0;

    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|err| UploadError::Interrupted(err.to_string()))?;
        size = size.saturating_add(piece.len() as u64);
        if size > limit_bytes {
            return Err(UploadError::TooLarge { limit_bytes });
        }
        if format.is_none() {
            let wanted = DETECT_HEAD_BYTES - head.len();
            head.extend_from_slice(&piece[..piece.len().min(wanted)]);
            if head.len() == DETECT_HEAD_BYTES {
                // Decided as soon as the head is in: an unsupported file is refused without
                // reading (or storing) the rest.
                format = Some(detect(&filename, &head).map_err(UploadError::Unsupported)?);
            }
        }
        hasher.update(&piece);
        file.write_all(&piece).await?;
    }
    let format = match format {
        Some(format) => format,
        None => detect(&filename, &head).map_err(UploadError::Unsupported)?,
    };
    file.flush().await?;
    file.sync_all().await?;
    Ok(ReceivedFile {
        guard,
        id,
        filename,
        format,
        size_bytes: size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Creates the document and its job for a received file, or returns the user's existing
/// document with the same bytes (the new copy is deleted).
pub async fn register(
    store: &dyn Store,
    user_id: Uuid,
    file: ReceivedFile,
    metadata: serde_json::Value,
) -> Result<Uploaded, UploadError> {
    let new = NewDocument {
        id: file.id,
        user_id,
        filename: file.filename.clone(),
        content_type: file.format.content_type().to_owned(),
        size_bytes: i64::try_from(file.size_bytes).unwrap_or(i64::MAX),
        sha256: file.sha256.clone(),
        metadata,
        storage_path: file.id.to_string(),
    };
    match store.create_document(new).await? {
        Created::New(document) => {
            file.guard.keep();
            Ok(Uploaded {
                document,
                created: true,
            })
        }
        Created::Existing(document) => Ok(Uploaded {
            document,
            created: false,
        }),
    }
}

/// Largest `metadata` field accepted, in bytes: enough for labels, not a second upload.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Parses the optional `metadata` field: a JSON object of bounded size.
pub fn parse_metadata(raw: &str) -> Result<serde_json::Value, UploadError> {
    if raw.len() > MAX_METADATA_BYTES {
        return Err(UploadError::BadRequest(format!(
            "metadata is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err(UploadError::BadRequest(
            "metadata must be a JSON object".into(),
        )),
        Err(err) => Err(UploadError::BadRequest(format!(
            "metadata is not valid JSON: {err}"
        ))),
    }
}

/// Removes a stored document's file; a file already gone is not an error.
pub async fn remove_stored_file(uploads_dir: &Path, document: &Document) -> std::io::Result<()> {
    match tokio::fs::remove_file(uploads_dir.join(&document.storage_path)).await {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// A file that is deleted when dropped unless [`keep`](Self::keep) was called.
struct PartialFile {
    path: Option<PathBuf>,
}

impl PartialFile {
    fn new(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Synchronous on purpose: Drop runs even when the request future is cancelled.
            if let Err(err) = std::fs::remove_file(&path)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %err, "cannot remove a partial upload");
            }
        }
    }
}
