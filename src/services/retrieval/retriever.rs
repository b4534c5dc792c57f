//! The retriever: embeds the question (through the cached embedder), asks the store for the
//! best chunks in the caller's scope in the requested mode, and returns citations.

use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::fusion::{reciprocal_rank_fusion, vector_weight};
use super::{Citation, SearchMode, metrics};
use crate::services::embeddings::{Embedder, EmbeddingError};
use crate::store::search::query_terms;
use crate::store::{SearchHit, SearchScope, Store, StoreError};

/// The most results one search returns.
pub const MAX_TOP_K: u32 = 50;

/// Candidates hybrid search takes from each ranking per requested result: fusion can only
/// promote what one of the lists found.
const HYBRID_CANDIDATES_PER_RESULT: u32 = 4;
const MIN_HYBRID_CANDIDATES: u32 = 20;

/// One search, as validated at the request boundary.
#[derive(Debug, Clone, Copy)]
pub struct SearchQuery<'a> {
    pub user_id: Uuid,
    pub text: &'a str,
    /// Only these documents; empty means all of the user's ready documents.
    pub document_ids: &'a [Uuid],
    /// 1..=[`MAX_TOP_K`]; values outside are clamped.
    pub top_k: u32,
    pub mode: SearchMode,
}

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// The question could not be embedded (provider down, timeout, bad answer).
    #[error(transparent)]
    Embedding(#[from] EmbeddingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Finds the chunks of a user's documents that match a question.
pub struct Retriever {
    store: Arc<dyn Store>,
    embedder: Arc<dyn Embedder>,
}

impl Retriever {
    pub fn new(store: Arc<dyn Store>, embedder: Arc<dyn Embedder>) -> Self {
        Self { store, embedder }
    }

    /// The best `top_k` chunks for the query, best first, as citations.
    #[tracing::instrument(skip_all, fields(mode = query.mode.as_str(), top_k = query.top_k))]
    pub async fn search(&self, query: SearchQuery<'_>) -> Result<Vec<Citation>, RetrievalError> {
        let started = Instant::now();
        let top_k = query.top_k.clamp(1, MAX_TOP_K);
        let scope = SearchScope {
            user_id: query.user_id,
            document_ids: query.document_ids,
            embedding_model: self.embedder.model(),
        };
        let hits = match query.mode {
            SearchMode::Vector => self.vector(scope, query.text, top_k).await?,
            SearchMode::Keyword => self.keyword(scope, query.text, top_k).await?,
            SearchMode::Hybrid => {
                let candidates = (top_k * HYBRID_CANDIDATES_PER_RESULT).max(MIN_HYBRID_CANDIDATES);
                let (vector, keyword) = tokio::try_join!(
                    self.vector(scope, query.text, candidates),
                    self.keyword(scope, query.text, candidates),
                )?;
                let weight = vector_weight(self.embedder.model());
                reciprocal_rank_fusion(vec![(vector, weight), (keyword, 1.0)], top_k as usize)
            }
        };
        metrics::search_done(
            query.mode,
            self.store.backend(),
            started.elapsed(),
            hits.len(),
        );
        Ok(hits.into_iter().map(Citation::from).collect())
    }

    async fn vector(
        &self,
        scope: SearchScope<'_>,
        text: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>, RetrievalError> {
        let vectors = self.embedder.embed(&[text.to_owned()]).await?;
        let Some(vector) = vectors.into_iter().next() else {
            return Err(EmbeddingError::InvalidResponse {
                reason: "no vector for the query".into(),
            }
            .into());
        };
        Ok(self.store.vector_search(scope, &vector, limit).await?)
    }

    async fn keyword(
        &self,
        scope: SearchScope<'_>,
        text: &str,
        limit: u32,
    ) -> Result<Vec<SearchHit>, RetrievalError> {
        let terms = query_terms(text);
        Ok(self.store.keyword_search(scope, &terms, limit).await?)
    }
}

impl From<SearchHit> for Citation {
    fn from(hit: SearchHit) -> Self {
        Self {
            document_id: hit.document_id,
            filename: hit.filename,
            chunk_index: i64::from(hit.chunk_index),
            text: hit.text,
            score: hit.score,
            page: hit.page.map(i64::from),
            char_start: i64::from(hit.char_start),
            char_end: i64::from(hit.char_end),
        }
    }
}
