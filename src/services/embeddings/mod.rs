//! Turning texts into vectors: the [`Embedder`] interface, the built-in local embedder, remote
//! models behind the LLM gateway, and the decorators every configured embedder is wrapped in
//! (a cache, and for remote models the coalescing batcher).

pub mod batching;
pub mod cached;
pub mod local;
mod metrics;
pub mod remote;

use std::num::NonZeroUsize;
use std::sync::Arc;

pub use batching::{BatchSettings, BatchingEmbedder};
pub use cached::CachedEmbedder;
pub use local::LocalEmbedder;
pub use remote::RemoteEmbedder;

use crate::cache::KvCache;
use crate::config::Settings;
use crate::services::llm::LlmGateway;

/// Width of the built-in embedder's vectors when `VECTOR_DIMENSION` is unset.
pub const DEFAULT_LOCAL_DIMENSION: usize = 384;

/// Vectors kept in the in-process cache (384 floats each: about 1.5 KB apiece).
const LOCAL_CACHE_ENTRIES: NonZeroUsize = match NonZeroUsize::new(20_000) {
    Some(entries) => entries,
    None => NonZeroUsize::MIN,
};

/// Upstream calls one process keeps in flight for embeddings.
const MAX_CALLS_IN_FLIGHT: usize = 4;

/// The embedder `EMBEDDING_MODEL` names, its width checked against `VECTOR_DIMENSION`, wrapped
/// in the cache (shared through `shared_cache` when given, e.g. Redis) and, for remote models,
/// the coalescing batcher. A remote model without `VECTOR_DIMENSION` is asked once for its
/// width, so start-up needs it reachable.
pub async fn from_settings(
    settings: &Settings,
    gateway: Arc<LlmGateway>,
    shared_cache: Option<Arc<dyn KvCache>>,
) -> Result<Arc<dyn Embedder>, EmbeddingError> {
    let model = settings.embedding_model.as_str();
    let base: Arc<dyn Embedder> = if model == local::MODEL {
        let dimension = settings.vector_dimension.unwrap_or(DEFAULT_LOCAL_DIMENSION);
        Arc::new(LocalEmbedder::new(dimension)?)
    } else {
        let remote = RemoteEmbedder::connect(gateway, model, settings.vector_dimension).await?;
        Arc::new(BatchingEmbedder::spawn(
            Arc::new(remote),
            BatchSettings {
                max_batch: settings.embedding_batch_size,
                max_in_flight: MAX_CALLS_IN_FLIGHT,
                ..BatchSettings::default()
            },
        ))
    };
    let shared = shared_cache.map(|cache| (cache, settings.embedding_cache_ttl));
    Ok(Arc::new(CachedEmbedder::new(
        base,
        LOCAL_CACHE_ENTRIES,
        shared,
    )))
}

/// Refuses to run with vectors of another width than the store already holds: they could
/// not be compared with the stored ones (and pgvector's index is built for one width).
pub fn check_stored_dimensions(
    embedder: &dyn Embedder,
    stored: &[crate::store::StoredEmbedding],
) -> Result<(), EmbeddingError> {
    match stored
        .iter()
        .find(|s| usize::try_from(s.dimension).ok() != Some(embedder.dimension()))
    {
        Some(other) => Err(EmbeddingError::StoredDimensionMismatch {
            model: embedder.model().to_owned(),
            dimension: embedder.dimension(),
            stored_model: other.embedding_model.clone(),
            stored_dimension: other.dimension,
        }),
        None => Ok(()),
    }
}

/// Why a batch of texts could not be embedded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbeddingError {
    /// The request cannot succeed as sent (empty batch, text too long, bad configuration).
    #[error("invalid embedding input: {reason}")]
    InvalidInput { reason: String },

    /// The embedding provider did not answer in time.
    #[error("the embedding provider timed out")]
    Timeout,

    /// The embedding provider could not be reached or answered with an error.
    #[error("the embedding provider is unavailable: {reason}")]
    Unavailable { reason: String },

    /// The provider answered with something that is not the expected embeddings.
    #[error("the embedding provider sent an invalid response: {reason}")]
    InvalidResponse { reason: String },

    /// Vectors of another width than the store holds: mixing them would corrupt search.
    #[error("embedding dimension mismatch: expected {expected}, got {actual}")]
    DimensionMismatch { expected: usize, actual: usize },

    /// Start-up found stored vectors of another width than the configured model gives.
    #[error(
        "EMBEDDING_MODEL={model} gives {dimension}-dimensional vectors, but the database holds \
         {stored_dimension}-dimensional vectors from {stored_model}; set EMBEDDING_MODEL and \
         VECTOR_DIMENSION back to {stored_model} / {stored_dimension}, or use a new database"
    )]
    StoredDimensionMismatch {
        model: String,
        dimension: usize,
        stored_model: String,
        stored_dimension: i32,
    },
}

impl EmbeddingError {
    /// A stable, low-cardinality label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. } => "invalid_input",
            Self::Timeout => "timeout",
            Self::Unavailable { .. } => "unavailable",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::DimensionMismatch { .. } | Self::StoredDimensionMismatch { .. } => {
                "dimension_mismatch"
            }
        }
    }
}

/// Something that turns texts into fixed-width vectors.
///
/// Vectors are returned in the order of `texts`, one per text, each `dimension()` wide.
/// `model()` is recorded next to every stored vector, so it must name the model and any
/// parameter that changes the vectors.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    fn model(&self) -> &str;
    fn dimension(&self) -> usize;
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError>;
}
