//! Search on the embedded backend. Vector: the in-process index ([`super::vectors`]) picks a
//! few candidates per result by a quantized scan, and sqlite-vec ranks those by exact cosine
//! distance (the whole scope when the user's vectors exceed the index's budget). Keyword:
//! FTS5's BM25.
//!
//! Both rank chunk ids in an inner query and read the texts of the `limit` winners only,
//! instead of carrying every candidate's text through the sort.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::store::search::{HIT_COLUMNS, SearchHit, SearchScope, SearchStore, any_of, push_scope};
use crate::store::{StoreError, chunks::vector_to_blob};

/// Candidates the quantized scan passes to the exact re-ranking per result, and at least:
/// enough that quantization, which only swaps near-equal scores, never pushes one of the
/// exact best out (recall@10 measured in benches/retrieval.rs).
const CANDIDATES_PER_RESULT: usize = 4;
const MIN_CANDIDATES: usize = 40;

/// Opens a query whose inner part (pushed next) yields `(id, distance)` rows, lowest distance
/// best; `score` turns `ranked.distance` into a higher-is-better score.
fn ranked(score: &str) -> QueryBuilder<Sqlite> {
    QueryBuilder::new(format!("SELECT {HIT_COLUMNS}, {score} AS score FROM ("))
}

/// Closes [`ranked`]: the winners' columns, best first.
fn close_ranked(sql: &mut QueryBuilder<Sqlite>, limit: u32) {
    sql.push(" ORDER BY distance, c.document_id, c.chunk_index LIMIT ")
        .push_bind(i64::from(limit))
        .push(
            ") AS ranked JOIN chunks AS c ON c.id = ranked.id \
             JOIN documents AS d ON d.id = c.document_id \
             ORDER BY ranked.distance, c.document_id, c.chunk_index",
        );
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn prepare_vector_index(&self, _dimension: usize) -> Result<(), StoreError> {
        // Exact search reads the vectors where they are stored: nothing to build.
        Ok(())
    }

    async fn vector_search(
        &self,
        scope: SearchScope<'_>,
        query: &[f32],
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let count = (limit as usize)
            .saturating_mul(CANDIDATES_PER_RESULT)
            .max(MIN_CANDIDATES);
        let candidates = self
            .vectors
            .candidates(&self.pool, scope, query, count)
            .await?;
        let mut sql = ranked("1.0 - ranked.distance");
        sql.push("SELECT c.id, vec_distance_cosine(c.embedding, ")
            .push_bind(vector_to_blob(query))
            .push(
                ") AS distance FROM chunks AS c JOIN documents AS d ON d.id = c.document_id WHERE",
            );
        push_scope(&mut sql, &scope);
        if let Some(ids) = candidates {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            sql.push(" AND c.id IN (");
            let mut list = sql.separated(", ");
            for id in ids {
                list.push_bind(id);
            }
            sql.push(")");
        }
        close_ranked(&mut sql, limit);
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn keyword_search(
        &self,
        scope: SearchScope<'_>,
        terms: &[String],
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        // CROSS JOIN fixes the full-text index as the outer loop: the other way round, SQLite
        // may run the whole MATCH once per chunk of the user. bm25() is lower-is-better.
        let mut sql = ranked("-ranked.distance");
        sql.push(
            "SELECT c.id, bm25(chunks_fts) AS distance FROM chunks_fts \
             CROSS JOIN chunks AS c ON c.id = chunks_fts.rowid \
             CROSS JOIN documents AS d ON d.id = c.document_id WHERE chunks_fts MATCH ",
        )
        .push_bind(any_of(terms, "OR"))
        .push(" AND");
        push_scope(&mut sql, &scope);
        close_ranked(&mut sql, limit);
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }
}
