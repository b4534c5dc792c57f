//! Search on the PostgreSQL backend: pgvector's HNSW index (cosine) for vectors, with
//! iterative index scans so that filtered queries still fill `limit`, and the generated
//! `tsv` column's GIN index, ranked with `ts_rank`, for keywords.
//!
//! `chunks.embedding` has no fixed width (the model is configurable), and HNSW indexes one
//! width, so the index is a partial expression index over `embedding::halfvec(N)` for the
//! active dimension N; queries repeat that exact expression and predicate to use it.
//! Distances are computed on `halfvec` (16-bit floats): half the index memory, rankings
//! that differ from full precision only between near-ties, and HNSW up to 4000 dimensions.

use async_trait::async_trait;
use sqlx::{Postgres, QueryBuilder};

use super::{PgStore, PgVector};
use crate::store::StoreError;
use crate::store::search::{HIT_COLUMNS, SearchHit, SearchScope, SearchStore, any_of, push_scope};

/// pgvector's HNSW limit for `halfvec`; wider vectors are searched exactly.
const HNSW_MAX_DIMENSION: usize = 4000;

/// One key for every replica creating the index, so two never race on the same name.
const INDEX_LOCK_KEY: i64 = 0x7261_6764_7665_6331; // "ragdvec1"

fn index_name(dimension: usize) -> String {
    format!("chunks_embedding_hnsw_{dimension}")
}

#[async_trait]
impl SearchStore for PgStore {
    async fn prepare_vector_index(&self, dimension: usize) -> Result<(), StoreError> {
        if !self.hnsw {
            tracing::info!("PGVECTOR_HNSW=false: vector search scans exactly");
            return Ok(());
        }
        if dimension == 0 || dimension > HNSW_MAX_DIMENSION {
            tracing::warn!(
                dimension,
                "vectors wider than {HNSW_MAX_DIMENSION} cannot have an HNSW index: \
                 vector search scans exactly"
            );
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(INDEX_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        // `dimension` is a number we computed, never user input.
        let create = format!(
            "CREATE INDEX IF NOT EXISTS {name} ON chunks USING hnsw \
             ((embedding::halfvec({dimension})) halfvec_cosine_ops) WHERE dimension = {dimension}",
            name = index_name(dimension)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn vector_search(
        &self,
        scope: SearchScope<'_>,
        query: &[f32],
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let dimension = query.len();
        let mut tx = self.pool.begin().await?;
        // Iterative scans keep walking the graph while filters reject candidates, so a user
        // with few chunks among many still gets `limit` results; relaxed order is re-sorted
        // below. Unknown to pgvector < 0.8, where these are harmless placeholders.
        sqlx::query(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), \
             set_config('hnsw.ef_search', $1, true)",
        )
        .bind(limit.max(self.ef_search).to_string())
        .execute(&mut *tx)
        .await?;
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "WITH nearest AS MATERIALIZED (SELECT {HIT_COLUMNS}, \
             c.embedding::halfvec({dimension}) <=> "
        ));
        sql.push_bind(PgVector(query.to_vec())).push(format!(
            "::vector({dimension})::halfvec({dimension}) AS distance FROM chunks AS c \
                 JOIN documents AS d ON d.id = c.document_id WHERE c.dimension = {dimension} AND"
        ));
        push_scope(&mut sql, &scope);
        sql.push(" ORDER BY distance LIMIT ")
            .push_bind(i64::from(limit))
            .push(
                ") SELECT document_id, filename, chunk_index, text, page, char_start, char_end, \
                 1 - distance AS score FROM nearest ORDER BY distance, document_id, chunk_index",
            );
        let hits = sql.build_query_as().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(hits)
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
        // websearch_to_tsquery never raises a syntax error; stop words drop out (a query of
        // only stop words matches nothing).
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT {HIT_COLUMNS}, ts_rank(c.tsv, q.query)::float8 AS score \
             FROM (SELECT websearch_to_tsquery('english', "
        ));
        sql.push_bind(any_of(terms, "or")).push(
            ") AS query) AS q, chunks AS c JOIN documents AS d ON d.id = c.document_id \
             WHERE c.tsv @@ q.query AND",
        );
        push_scope(&mut sql, &scope);
        sql.push(" ORDER BY score DESC, c.document_id, c.chunk_index LIMIT ")
            .push_bind(i64::from(limit));
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }
}
