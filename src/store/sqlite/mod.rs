//! The embedded backend: one SQLite file (WAL mode) holds users, documents, the ingestion
//! queue, chunks with their vectors (sqlite-vec) and the keyword index (FTS5), so a backup is
//! one file.

mod index;
mod search;
mod stop_words;
mod vector_extension;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Store, StoreError};
use crate::store::portable::impl_portable_stores;
use crate::store::portable_ingest::impl_portable_ingest_stores;
use crate::store::usage::impl_portable_usage_store;
use index::SearchIndex;

/// The search index's memory budget when none is configured (`SEARCH_INDEX_MEMORY_MB`'s
/// default): about 700,000 384-dimensional chunks of 60 words.
pub const DEFAULT_SEARCH_INDEX_BYTES: usize = 512 * 1024 * 1024;

/// Embedded SQLite storage.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Shared by the clones: one cache of users' indexed chunks per opened file.
    index: Arc<SearchIndex>,
}

impl SqliteStore {
    /// Opens (creating when missing) the database file at `path` and migrates it.
    pub async fn open(path: &Path, max_connections: u32) -> Result<Self, StoreError> {
        vector_extension::register();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| StoreError::Unavailable(err.into()))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Writers queue behind each other instead of failing with SQLITE_BUSY.
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(StoreError::Unavailable)?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            index: Arc::new(SearchIndex::new(DEFAULT_SEARCH_INDEX_BYTES)),
        })
    }

    /// The same store with a search index that keeps at most `bytes` of users' vectors and
    /// inverted texts in memory (users beyond it are searched by SQLite alone).
    pub fn with_search_index_budget(self, bytes: usize) -> Self {
        Self {
            index: Arc::new(SearchIndex::new(bytes)),
            ..self
        }
    }

    /// Write transactions take SQLite's write lock at once: a deferred transaction that
    /// upgrades later fails with "database is locked" instead of waiting its turn.
    const BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    /// Claims the oldest due job in one statement; SQLite serializes writers, so two
    /// connections can never both take it.
    const CLAIM_JOB_SQL: &'static str = "UPDATE ingest_jobs SET state = 'running', \
         attempts = attempts + 1, claims = claims + 1, locked_until = $2, updated_at = $1 \
         WHERE document_id = (SELECT document_id FROM ingest_jobs \
         WHERE state = 'pending' AND run_after <= $1 ORDER BY run_after LIMIT 1) \
         RETURNING document_id, attempts, claims";

    /// Vectors are stored as little-endian f32 BLOBs, the layout sqlite-vec reads.
    fn embedding_value(vector: &[f32]) -> Vec<u8> {
        crate::store::chunks::vector_to_blob(vector)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl_portable_stores!(SqliteStore);
impl_portable_ingest_stores!(SqliteStore);
impl_portable_usage_store!(SqliteStore);
