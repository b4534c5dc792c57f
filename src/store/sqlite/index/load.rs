//! Reading a user's chunks out of SQLite for the in-process index: the generation that says
//! whether a cached copy is current, the version of each searchable document's chunk set,
//! and the vectors and texts of the documents whose version changed.
//!
//! The generation is kept by triggers (migration 0004) in the same transaction as every
//! write to the user's chunks or to a document's readiness, by whichever process writes.
//! A chunk set's version is its highest chunk id: chunk ids are AUTOINCREMENT (never reused)
//! and a document's chunks are only ever replaced whole, so a new set has a new version.

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::keywords::KeywordsBuilder;
use super::quantized::DocumentVectors;
use super::terms::Terms;
use super::{IndexedDocument, blocking};
use crate::store::StoreError;

/// Documents per `IN (...)` list when reading vectors, well below SQLite's bind limit.
const DOCUMENTS_PER_READ: usize = 500;

/// The user's search generation: it changes whenever what their search can see changes.
pub async fn generation(
    connection: &mut SqliteConnection,
    user_id: Uuid,
) -> Result<i64, StoreError> {
    let generation: Option<i64> =
        sqlx::query_scalar("SELECT generation FROM search_generations WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(connection)
            .await?;
    // No row yet: the user never had a chunk.
    Ok(generation.unwrap_or(0))
}

/// A searchable (ready, embedded by the model) document with chunks.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Version {
    pub document_id: Uuid,
    pub version: i64,
    pub chunks: i64,
}

/// The version of each of the user's searchable documents. Reads only the chunks' index on
/// `(document_id, chunk_index)`, which holds the ids: no vector is read. The model is the
/// document's: `replace_chunks` writes it on the document and its chunks together.
pub async fn versions(
    connection: &mut SqliteConnection,
    user_id: Uuid,
    model: &str,
) -> Result<Vec<Version>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT d.id AS document_id, MAX(c.id) AS version, COUNT(*) AS chunks \
         FROM documents AS d JOIN chunks AS c ON c.document_id = d.id \
         WHERE d.user_id = $1 AND d.status = 'ready' AND d.embedding_model = $2 \
         GROUP BY d.id",
    )
    .bind(user_id)
    .bind(model)
    .fetch_all(connection)
    .await?)
}

/// The dimension of the user's stored vectors for `model` (one width per model), if any.
pub async fn dimension(
    connection: &mut SqliteConnection,
    user_id: Uuid,
    model: &str,
) -> Result<Option<usize>, StoreError> {
    let dimension: Option<i64> = sqlx::query_scalar(
        "SELECT dimension FROM chunks WHERE user_id = $1 AND embedding_model = $2 LIMIT 1",
    )
    .bind(user_id)
    .bind(model)
    .fetch_optional(connection)
    .await?;
    Ok(dimension.and_then(|d| usize::try_from(d).ok()))
}

/// Rows indexed per trip off the async workers: indexing a row (tokenizing and stemming its
/// text, quantizing its vector) takes about 10 µs, and a user's first search may read 100,000.
const ROWS_PER_TASK: usize = 1024;

/// A chunk as read: its document, id, vector and text.
type Row = (Uuid, i64, Vec<u8>, String);

/// `documents` (which must be the user's) read and indexed: their chunks' vectors quantized,
/// their texts inverted. Rows are streamed and indexed by the blocking pool in batches, so
/// only the index is ever held whole and the async workers never stall on it.
pub async fn documents(
    connection: &mut SqliteConnection,
    user_id: Uuid,
    model: &str,
    documents: &[Version],
    dimension: usize,
) -> Result<Vec<IndexedDocument>, StoreError> {
    let mut indexing = Indexing::new(documents, dimension);
    let mut pending: Vec<Row> = Vec::with_capacity(ROWS_PER_TASK);
    for batch in documents.chunks(DOCUMENTS_PER_READ) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "SELECT c.document_id, c.id, c.embedding, c.text FROM chunks AS c \
             INDEXED BY chunks_document_index_key WHERE c.user_id = ",
        );
        sql.push_bind(user_id)
            .push(" AND c.embedding_model = ")
            .push_bind(model)
            .push(" AND c.document_id IN (");
        let mut ids = sql.separated(", ");
        for document in batch {
            ids.push_bind(document.document_id);
        }
        // In the order of the index on (document_id, chunk_index), read without a sort:
        // keyword ties are broken by position, as SQL breaks them by chunk index.
        sql.push(") ORDER BY c.document_id, c.chunk_index");
        let mut rows = sql.build_query_as::<Row>().fetch(&mut *connection);
        while let Some(row) = rows.try_next().await? {
            pending.push(row);
            if pending.len() == ROWS_PER_TASK {
                let rows = std::mem::replace(&mut pending, Vec::with_capacity(ROWS_PER_TASK));
                indexing = blocking(move || indexing.add(rows)).await??;
            }
        }
    }
    indexing = blocking(move || indexing.add(pending)).await??;
    let versions = documents.to_vec();
    blocking(move || indexing.finish(&versions)).await
}

/// The documents being indexed, with what indexing them needs.
struct Indexing {
    dimension: usize,
    documents: HashMap<Uuid, (DocumentVectors, KeywordsBuilder)>,
    terms: Terms,
    vector: Vec<f32>,
}

impl Indexing {
    fn new(documents: &[Version], dimension: usize) -> Self {
        Self {
            dimension,
            documents: documents
                .iter()
                .map(|d| {
                    let parts = (DocumentVectors::new(dimension), KeywordsBuilder::default());
                    (d.document_id, parts)
                })
                .collect(),
            terms: Terms::default(),
            vector: Vec::with_capacity(dimension),
        }
    }

    /// Indexes `rows`, giving itself back for the next batch.
    fn add(mut self, rows: Vec<Row>) -> Result<Self, StoreError> {
        for (document_id, id, blob, text) in rows {
            decode(&blob, self.dimension, &mut self.vector)?;
            if let Some((vectors, keywords)) = self.documents.get_mut(&document_id) {
                vectors.push(id, &self.vector);
                keywords.push(&mut self.terms, &text);
            }
        }
        Ok(self)
    }

    /// The indexed documents, in the order of `versions`.
    fn finish(mut self, versions: &[Version]) -> Vec<IndexedDocument> {
        versions
            .iter()
            .filter_map(|version| {
                let (vectors, keywords) = self.documents.remove(&version.document_id)?;
                Some(IndexedDocument {
                    document_id: version.document_id,
                    version: version.version,
                    vectors,
                    keywords: keywords.finish(),
                })
            })
            .collect()
    }
}

/// Decodes a stored vector (little-endian f32s) of `dimension` values into `vector`.
fn decode(blob: &[u8], dimension: usize, vector: &mut Vec<f32>) -> Result<(), StoreError> {
    if blob.len() != dimension * size_of::<f32>() {
        return Err(StoreError::Corrupt(format!(
            "a stored vector has {} bytes, expected {dimension} f32 values",
            blob.len()
        )));
    }
    vector.clear();
    vector.extend(
        blob.chunks_exact(size_of::<f32>())
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    );
    Ok(())
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;
    use crate::store::chunks::vector_to_blob;

    #[test]
    fn stored_vectors_decode_and_wrong_widths_are_refused() {
        let mut vector = Vec::new();
        decode(&vector_to_blob(&[1.5, -2.0]), 2, &mut vector).unwrap();
        assert_eq!(vector, [1.5, -2.0]);
        assert!(matches!(
            decode(&vector_to_blob(&[1.0]), 2, &mut vector),
            Err(StoreError::Corrupt(_))
        ));
    }
}
