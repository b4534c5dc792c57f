//! Search on the embedded backend: exact cosine distance with sqlite-vec over the caller's
//! chunks (no approximation, so no recall loss; fast enough at the scale one SQLite file
//! serves, see docs/benchmarks.md) and FTS5's BM25 for keywords.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::store::search::{HIT_COLUMNS, SearchHit, SearchScope, SearchStore, any_of, push_scope};
use crate::store::{StoreError, chunks::vector_to_blob};

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
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {HIT_COLUMNS}, 1.0 - vec_distance_cosine(c.embedding, "
        ));
        sql.push_bind(vector_to_blob(query))
            .push(") AS score FROM chunks AS c JOIN documents AS d ON d.id = c.document_id WHERE");
        push_scope(&mut sql, &scope);
        sql.push(" ORDER BY score DESC, c.document_id, c.chunk_index LIMIT ")
            .push_bind(i64::from(limit));
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
        // bm25() is lower-is-better; negated so every mode ranks higher-is-better.
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {HIT_COLUMNS}, -bm25(chunks_fts) AS score FROM chunks_fts \
             JOIN chunks AS c ON c.id = chunks_fts.rowid \
             JOIN documents AS d ON d.id = c.document_id WHERE chunks_fts MATCH "
        ));
        sql.push_bind(any_of(terms, "OR")).push(" AND");
        push_scope(&mut sql, &scope);
        sql.push(" ORDER BY score DESC, c.document_id, c.chunk_index LIMIT ")
            .push_bind(i64::from(limit));
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }
}
