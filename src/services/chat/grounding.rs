//! THE RAG SEAM: where the evidence for a grounded answer comes from.
//!
//! The chat service asks its [`Grounding`] for citations and builds the prompt from them; it
//! knows nothing about how they were found. Until the retrieval service plugs in its
//! implementation (`ChatService::with_grounding`), [`Ungrounded`] answers with none, and
//! chats are answered from the conversation alone.

use async_trait::async_trait;
use uuid::Uuid;

use super::RagScope;
use crate::http::error::ApiError;
use crate::services::retrieval::Citation;

/// Finds the passages of the caller's documents that answer a question.
#[async_trait]
pub trait Grounding: Send + Sync {
    /// At most `scope.top_k` citations, best first, only from `user`'s documents (and only
    /// from `scope.document_ids` when that is not empty). Another user's document id finds
    /// nothing, as if it did not exist.
    async fn ground(
        &self,
        user: Uuid,
        question: &str,
        scope: &RagScope,
    ) -> Result<Vec<Citation>, GroundingError>;
}

/// Why evidence could not be gathered. Carries the HTTP-ready error of the layer that failed
/// (store, embeddings, not found), so the chat service needs no knowledge of that layer:
/// `GroundingError(err.into())`.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message)]
pub struct GroundingError(pub ApiError);

/// No retrieval: every question is answered without documents.
#[derive(Debug, Default)]
pub struct Ungrounded;

#[async_trait]
impl Grounding for Ungrounded {
    async fn ground(
        &self,
        _user: Uuid,
        _question: &str,
        _scope: &RagScope,
    ) -> Result<Vec<Citation>, GroundingError> {
        Ok(Vec::new())
    }
}
