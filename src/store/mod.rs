//! Durable state behind small traits, one per domain, with an embedded SQLite and a
//! PostgreSQL + pgvector implementation of each. The backend is chosen once, at start-up, by
//! the scheme of `DATABASE_URL`; nothing above this module knows which one runs.
//!
//! Tenancy rule for every trait here: a method that touches user-owned data takes the caller's
//! user id and filters by it in its SQL. Another user's row is simply not found.

mod api_keys;
pub mod chunks;
mod documents;
mod error;
mod portable;
pub(crate) mod portable_ingest;
pub mod postgres;
pub mod revocations;
pub mod search;
pub mod sqlite;
mod usage;
mod users;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{DatabaseUrl, Settings};
pub use api_keys::{ApiKey, ApiKeyStore, KeyOwner, KeyUse, NewApiKey};
pub use chunks::{ChunkSet, ChunkStore, NewChunk, StoredChunk, StoredEmbedding};
pub use documents::{
    ClaimedJob, Created, Document, DocumentPage, DocumentStatus, DocumentStore, IngestQueue, Lease,
    NewDocument, QueueDepth,
};
pub use error::StoreError;
pub use revocations::{Revocation, RevocationStore};
pub use search::{SearchHit, SearchScope, SearchStore};
pub use usage::{UsageEvent, UsageStore};
pub use users::{NewUser, User, UserStore};

/// Everything ragd keeps durably. `Arc<dyn Store>` lives in the application state.
#[async_trait]
pub trait Store:
    UserStore
    + ApiKeyStore
    + RevocationStore
    + DocumentStore
    + IngestQueue
    + ChunkStore
    + SearchStore
    + UsageStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`, for logs, metrics and readiness.
    fn backend(&self) -> &'static str;

    /// One round trip to the database, for `/health/ready`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stops handing out connections; in-flight queries finish.
    async fn close(&self);
}

/// The current time at the precision both backends keep (microseconds), so a value read back
/// equals the value written.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DurationRound::duration_trunc(now, chrono::TimeDelta::microseconds(1)).unwrap_or(now)
}

/// Opens the configured backend and brings its schema up to date.
pub async fn connect(settings: &Settings) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match &settings.database_url {
        DatabaseUrl::Sqlite(path) => Arc::new(
            sqlite::SqliteStore::open(path, settings.database_max_connections)
                .await?
                .with_search_index_budget(settings.search_index_memory_bytes),
        ),
        DatabaseUrl::Postgres(url) => {
            let store = postgres::PgStore::connect(url.expose(), settings.database_max_connections)
                .await?
                .with_ef_search(settings.pgvector_ef_search);
            Arc::new(if settings.pgvector_hnsw {
                store
            } else {
                store.without_hnsw()
            })
        }
    };
    Ok(store)
}
