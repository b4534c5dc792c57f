//! The scale-out backend: PostgreSQL with pgvector, shared by any number of ragd replicas.
//! Vectors live in a `vector` column with an HNSW index, keyword search uses a generated
//! `tsvector`, and the ingestion queue is claimed with `FOR UPDATE SKIP LOCKED`.

mod search;
mod vector;

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{Store, StoreError};
use crate::store::portable::impl_portable_stores;
use crate::store::portable_ingest::impl_portable_ingest_stores;
use crate::store::usage::impl_portable_usage_store;
pub use vector::PgVector;

/// pgvector's own default for `hnsw.ef_search`.
const DEFAULT_EF_SEARCH: u32 = 40;

/// PostgreSQL + pgvector storage.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Whether vector search has an HNSW index (see [`PgStore::without_hnsw`]).
    hnsw: bool,
    /// The HNSW search's candidate list, `hnsw.ef_search` (raised to a search's limit).
    ef_search: u32,
}

impl PgStore {
    /// Connects and migrates. Replicas starting together are safe: sqlx takes an advisory lock
    /// around migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(StoreError::Unavailable)?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            hnsw: true,
            ef_search: DEFAULT_EF_SEARCH,
        })
    }

    /// Vector search by exact scans, with no HNSW index: for small data, or a pgvector build
    /// whose HNSW code cannot run on the server's CPU (`PGVECTOR_HNSW=false`).
    pub fn without_hnsw(mut self) -> Self {
        self.hnsw = false;
        self
    }

    /// Candidates each HNSW search keeps (`PGVECTOR_EF_SEARCH`): more finds more of the true
    /// nearest chunks and costs time. Raised to a search's limit when that is larger.
    pub fn with_ef_search(mut self, ef_search: u32) -> Self {
        self.ef_search = ef_search.max(1);
        self
    }

    /// Row locks make Postgres write transactions safe as plainly begun.
    const BEGIN_WRITE: &'static str = "BEGIN";

    /// Claims the oldest due job; `SKIP LOCKED` lets concurrent workers of any number of
    /// replicas each take a different row instead of waiting on, or sharing, the same one.
    const CLAIM_JOB_SQL: &'static str = "UPDATE ingest_jobs SET state = 'running', \
         attempts = attempts + 1, claims = claims + 1, locked_until = $2, updated_at = $1 \
         WHERE document_id = (SELECT document_id FROM ingest_jobs \
         WHERE state = 'pending' AND run_after <= $1 ORDER BY run_after LIMIT 1 \
         FOR UPDATE SKIP LOCKED) RETURNING document_id, attempts, claims";

    fn embedding_value(vector: &[f32]) -> PgVector {
        PgVector(vector.to_vec())
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl_portable_stores!(PgStore);
impl_portable_ingest_stores!(PgStore);
impl_portable_usage_store!(PgStore);
