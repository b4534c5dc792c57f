//! Turning texts into vectors: the [`Embedder`] interface shared by the providers and the
//! built-in local embedder, and its error type.

pub mod local;

use std::sync::Arc;

pub use local::LocalEmbedder;

use crate::config::Settings;

/// Width of the built-in embedder's vectors when `VECTOR_DIMENSION` is unset.
pub const DEFAULT_LOCAL_DIMENSION: usize = 384;

/// The embedder `EMBEDDING_MODEL` names, checked against `VECTOR_DIMENSION`.
pub fn from_settings(settings: &Settings) -> Result<Arc<dyn Embedder>, EmbeddingError> {
    if settings.embedding_model == local::MODEL {
        let dimension = settings.vector_dimension.unwrap_or(DEFAULT_LOCAL_DIMENSION);
        return Ok(Arc::new(LocalEmbedder::new(dimension)?));
    }
    Err(EmbeddingError::InvalidInput {
        reason: format!(
            "EMBEDDING_MODEL={} is not available in this build; use {}",
            settings.embedding_model,
            local::MODEL
        ),
    })
}

/// Why a batch of texts could not be embedded.
#[derive(Debug, thiserror::Error)]
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
}

impl EmbeddingError {
    /// A stable, low-cardinality label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput { .. } => "invalid_input",
            Self::Timeout => "timeout",
            Self::Unavailable { .. } => "unavailable",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::DimensionMismatch { .. } => "dimension_mismatch",
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
