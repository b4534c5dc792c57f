//! Embedding models behind the LLM gateway (OpenAI-compatible, `ollama/NAME`), as an
//! [`Embedder`] whose width is known before the first document is stored.

use std::sync::Arc;

use super::{Embedder, EmbeddingError};
use crate::services::llm::{LlmGateway, ProviderError};

/// The text of the start-up probe that discovers a model's width.
const PROBE_TEXT: &str = "ragd dimension probe";

/// A remote embedding model with a checked width.
pub struct RemoteEmbedder {
    gateway: Arc<LlmGateway>,
    model: String,
    dimension: usize,
}

impl RemoteEmbedder {
    /// Uses `configured` (`VECTOR_DIMENSION`) when given, else asks the model once. Every
    /// answer is checked against this width afterwards.
    pub async fn connect(
        gateway: Arc<LlmGateway>,
        model: &str,
        configured: Option<usize>,
    ) -> Result<Self, EmbeddingError> {
        let dimension = match configured {
            Some(dimension) => dimension,
            None => {
                let output = gateway
                    .embed(model, &[PROBE_TEXT.to_owned()])
                    .await
                    .map_err(|err| from_provider(model, err))?;
                match output.value.vectors.first() {
                    Some(vector) if !vector.is_empty() => vector.len(),
                    _ => {
                        return Err(EmbeddingError::InvalidResponse {
                            reason: format!("{model} returned no vector for the start-up probe"),
                        });
                    }
                }
            }
        };
        Ok(Self {
            gateway,
            model: model.to_owned(),
            dimension,
        })
    }
}

#[async_trait::async_trait]
impl Embedder for RemoteEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let output = self
            .gateway
            .embed(&self.model, texts)
            .await
            .map_err(|err| from_provider(&self.model, err))?;
        let vectors = output.value.vectors;
        if vectors.len() != texts.len() {
            return Err(EmbeddingError::InvalidResponse {
                reason: format!("{} vectors for {} texts", vectors.len(), texts.len()),
            });
        }
        if let Some(wrong) = vectors.iter().find(|v| v.len() != self.dimension) {
            return Err(EmbeddingError::DimensionMismatch {
                expected: self.dimension,
                actual: wrong.len(),
            });
        }
        Ok(vectors)
    }
}

/// The gateway's failure in the embedder's terms; the provider's summary (no secrets) stays.
fn from_provider(model: &str, err: ProviderError) -> EmbeddingError {
    match err {
        ProviderError::Timeout { .. } => EmbeddingError::Timeout,
        ProviderError::NotConfigured { .. } | ProviderError::Unsupported { .. } => {
            EmbeddingError::InvalidInput {
                reason: format!("EMBEDDING_MODEL={model}: {err}"),
            }
        }
        ProviderError::Protocol { .. } => EmbeddingError::InvalidResponse {
            reason: err.to_string(),
        },
        ProviderError::Upstream { .. }
        | ProviderError::RateLimited { .. }
        | ProviderError::Connect { .. }
        | ProviderError::StreamCut { .. } => EmbeddingError::Unavailable {
            reason: err.to_string(),
        },
    }
}
