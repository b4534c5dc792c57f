//! One document from stored file to stored chunks: read, extract (blocking pool, bounded),
//! chunk (blocking pool), embed in batches with a bounded number in flight, and replace the
//! document's chunks in one transaction. Shared by the workers and `ragd ingest`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use super::{ChunkDraft, Chunker, DocumentFormat, ExtractLimits, IngestError, extract_blocking};
use crate::services::embeddings::{Embedder, EmbeddingError};
use crate::store::{ChunkSet, Document, NewChunk, Store, StoreError};

/// Embedding calls one document keeps in flight.
const EMBED_CALLS_IN_FLIGHT: usize = 4;

/// Everything processing needs, built once and shared by every worker.
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub embedder: Arc<dyn Embedder>,
    pub chunker: Arc<Chunker>,
    pub uploads_dir: PathBuf,
    pub limits: ExtractLimits,
    /// Texts per embedding call (`EMBEDDING_BATCH_SIZE`).
    pub batch_size: usize,
}

/// What processing one document achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    Ready {
        chunks: usize,
        extraction: Duration,
        embedding: Duration,
    },
    /// The document was deleted while it was processed; nothing was written.
    Deleted,
}

/// Why processing one document failed. The `Display` text is shown to the document's owner.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{0}")]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Embedding(#[from] EmbeddingError),
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    #[error("the stored file cannot be read: {0}")]
    File(#[source] std::io::Error),
}

impl ProcessError {
    /// Whether another attempt could succeed: a malformed file stays malformed, a provider or
    /// database outage passes.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Ingest(err) => matches!(err, IngestError::Timeout { .. }),
            Self::Embedding(err) => !matches!(
                err,
                EmbeddingError::InvalidInput { .. }
                    | EmbeddingError::DimensionMismatch { .. }
                    | EmbeddingError::StoredDimensionMismatch { .. }
            ),
            Self::Store(_) => true,
            Self::File(_) => false,
        }
    }

    /// A stable label for the failures-by-reason metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ingest(err) => err.kind(),
            Self::Embedding(_) => "embedding",
            Self::Store(_) => "store",
            Self::File(_) => "file",
        }
    }
}

impl Pipeline {
    /// Turns `document`'s stored file into its chunks. Safe to run again: the chunks are
    /// replaced, never added to.
    pub async fn process(&self, document: &Document) -> Result<Processed, ProcessError> {
        let format =
            DocumentFormat::from_content_type(&document.content_type).ok_or_else(|| {
                IngestError::Unsupported {
                    detail: document.content_type.clone(),
                }
            })?;
        let path = self.uploads_dir.join(&document.storage_path);
        let bytes = tokio::fs::read(&path).await.map_err(ProcessError::File)?;

        let started = Instant::now();
        let extracted = extract_blocking(format, bytes, self.limits.clone()).await?;
        let chunker = self.chunker.clone();
        let drafts = tokio::task::spawn_blocking(move || chunker.chunk(&extracted))
            .await
            .map_err(|err| IngestError::malformed(format, format!("chunking stopped: {err}")))?;
        let extraction = started.elapsed();

        let started = Instant::now();
        let chunks = self.embed(drafts).await?;
        let embedding = started.elapsed();

        let stored = self
            .store
            .replace_chunks(ChunkSet {
                user_id: document.user_id,
                document_id: document.id,
                model: self.embedder.model(),
                dimension: self.embedder.dimension(),
                chunks: &chunks,
            })
            .await?;
        Ok(if stored {
            Processed::Ready {
                chunks: chunks.len(),
                extraction,
                embedding,
            }
        } else {
            Processed::Deleted
        })
    }

    /// Embeds the drafts in batches of `batch_size`, a few calls at a time, in order.
    async fn embed(&self, drafts: Vec<ChunkDraft>) -> Result<Vec<NewChunk>, EmbeddingError> {
        // Owned batches and embedder handles: futures that borrow nothing stay `Send` for
        // every lifetime, which the workers' spawned tasks need.
        let batches: Vec<Vec<String>> = drafts
            .chunks(self.batch_size.max(1))
            .map(|batch| batch.iter().map(|draft| draft.text.clone()).collect())
            .collect();
        let calls = batches.into_iter().map(|batch| {
            let embedder = self.embedder.clone();
            async move { embedder.embed(&batch).await }
        });
        let vectors: Vec<Vec<Vec<f32>>> = futures::stream::iter(calls)
            .buffered(EMBED_CALLS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(drafts
            .into_iter()
            .zip(vectors.into_iter().flatten())
            .map(|(draft, embedding)| to_new_chunk(draft, embedding))
            .collect())
    }
}

fn to_new_chunk(draft: ChunkDraft, embedding: Vec<f32>) -> NewChunk {
    let saturating = |value: u32| i32::try_from(value).unwrap_or(i32::MAX);
    NewChunk {
        chunk_index: saturating(draft.index),
        text: draft.text,
        page: draft.page.map(saturating),
        char_start: saturating(draft.char_start),
        char_end: saturating(draft.char_end),
        heading_path: draft.heading_path,
        token_count: saturating(draft.token_count),
        embedding,
    }
}
