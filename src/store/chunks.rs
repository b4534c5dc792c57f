//! A document's chunks with their vectors: written by ingestion (replaced whole, in one
//! transaction), read by retrieval.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;

/// One chunk ready to be stored, with its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    pub chunk_index: i32,
    pub text: String,
    pub page: Option<i32>,
    pub char_start: i32,
    pub char_end: i32,
    pub heading_path: Option<String>,
    pub token_count: i32,
    pub embedding: Vec<f32>,
}

/// The chunks of one document, all embedded by one model.
#[derive(Debug, Clone, Copy)]
pub struct ChunkSet<'a> {
    pub user_id: Uuid,
    pub document_id: Uuid,
    /// The model and width every vector in `chunks` came from.
    pub model: &'a str,
    pub dimension: usize,
    pub chunks: &'a [NewChunk],
}

/// A model and width found among the stored vectors.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredEmbedding {
    pub embedding_model: String,
    pub dimension: i32,
}

/// A stored chunk as its document's owner sees it (no vector).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredChunk {
    pub chunk_index: i32,
    pub text: String,
    pub page: Option<i32>,
    pub char_start: i32,
    pub char_end: i32,
    pub heading_path: Option<String>,
}

#[async_trait]
pub trait ChunkStore {
    /// Replaces the document's chunks with `set.chunks` and marks it `ready` with their count,
    /// in one transaction: a re-run replaces, never duplicates. Returns false (writing nothing)
    /// when the document no longer exists, e.g. it was deleted while being processed.
    async fn replace_chunks(&self, set: ChunkSet<'_>) -> Result<bool, StoreError>;

    /// The user's document's chunks in order; empty when it has none or is not theirs.
    async fn document_chunks(
        &self,
        user_id: Uuid,
        document_id: Uuid,
    ) -> Result<Vec<StoredChunk>, StoreError>;

    /// Every (model, dimension) pair among the stored vectors, for the start-up check.
    async fn stored_embeddings(&self) -> Result<Vec<StoredEmbedding>, StoreError>;
}

/// Rows per multi-row INSERT: 9 binds each stays well below SQLite's 32,766 and Postgres's
/// 65,535 bind limits while keeping round trips few.
pub(crate) const INSERT_BATCH_ROWS: usize = 500;

/// SQLite's vector encoding: little-endian f32s, what sqlite-vec reads.
pub fn vector_to_blob(vector: &[f32]) -> Vec<u8> {
    vector
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}
