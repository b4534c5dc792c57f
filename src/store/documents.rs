//! Documents a user uploaded, and the durable ingestion queue that turns them into chunks.
//!
//! Both traits are implemented by each backend; the queue's claim is the only backend-specific
//! statement (Postgres `FOR UPDATE SKIP LOCKED`, SQLite one `UPDATE ... RETURNING`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// Where a document is in its lifecycle: `queued -> processing -> ready | failed`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    Queued,
    Processing,
    Ready,
    Failed,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    /// Parses the stored (and query-string) spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "queued" => Some(Self::Queued),
            "processing" => Some(Self::Processing),
            "ready" => Some(Self::Ready),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for DocumentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status column holding something else than the four states.
#[derive(Debug, thiserror::Error)]
#[error("unknown document status {0:?}")]
pub struct UnknownStatus(String);

impl TryFrom<String> for DocumentStatus {
    type Error = UnknownStatus;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or(UnknownStatus(value))
    }
}

/// A stored document (its metadata; the bytes are in `storage_path`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Document {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The user's filename, sanitized: display only, never a path.
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes: the duplicate-upload key, per user.
    pub sha256: String,
    #[sqlx(try_from = "String")]
    pub status: DocumentStatus,
    /// Why the document failed, for its owner.
    pub error: Option<String>,
    pub chunk_count: i32,
    #[sqlx(json)]
    pub metadata: serde_json::Value,
    /// The stored file's name inside the uploads directory (a UUID, never user input).
    pub storage_path: String,
    /// The model the current chunks were embedded with; `None` until first ready.
    pub embedding_model: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What creating a document needs; id, status and times are assigned by the store.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// Chosen by the caller because the stored file is already named after it.
    pub id: Uuid,
    pub user_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub metadata: serde_json::Value,
    pub storage_path: String,
}

/// The result of [`DocumentStore::create_document`].
#[derive(Debug, Clone)]
pub enum Created {
    /// A new document, queued for ingestion.
    New(Document),
    /// The user already has a document with these bytes; nothing was written.
    Existing(Document),
}

/// One page of a user's documents, newest first.
#[derive(Debug, Clone, Copy)]
pub struct DocumentPage {
    /// At most this many (the caller bounds it).
    pub limit: u32,
    /// Only documents older than this one (the previous page's last id).
    pub before: Option<Uuid>,
    pub status: Option<DocumentStatus>,
}

#[async_trait]
pub trait DocumentStore {
    /// Inserts the document and its ingestion job in one transaction, or returns the user's
    /// existing document with the same SHA-256.
    async fn create_document(&self, document: NewDocument) -> Result<Created, StoreError>;

    async fn document(&self, user_id: Uuid, id: Uuid) -> Result<Option<Document>, StoreError>;

    /// Ids are UUIDv7, so id order is creation order and the cursor is an id.
    async fn list_documents(
        &self,
        user_id: Uuid,
        page: DocumentPage,
    ) -> Result<Vec<Document>, StoreError>;

    /// Deletes the document with its chunks, vectors and job, returning what was deleted (the
    /// caller removes the stored file). A worker processing it finds it gone before committing.
    async fn delete_document(
        &self,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Document>, StoreError>;

    /// Queues the document for ingestion again with fresh attempts; its current chunks stay
    /// until the new ones replace them in one transaction.
    async fn reindex_document(
        &self,
        user_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Document>, StoreError>;

    /// Queues every document whose chunks were embedded with another model than `model`;
    /// returns how many. Start-up calls it after `EMBEDDING_MODEL` changed.
    async fn reindex_stale_documents(&self, model: &str) -> Result<u64, StoreError>;
}

/// A job a worker holds: the document to process, the attempt number and the lease.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub document: Document,
    /// 1 on the first try; decides the backoff and when to give up.
    pub attempt: i32,
    pub lease: Lease,
}

/// Proof of holding a job: the claim counter at claim time. Every claim increments it, so a
/// worker whose lease expired and was claimed by another can no longer complete or fail it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub document_id: Uuid,
    pub claim: i32,
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub pending: i64,
    pub running: i64,
    pub done: i64,
    pub failed: i64,
}

/// The durable ingestion queue: one job row per document.
#[async_trait]
pub trait IngestQueue {
    /// Takes the oldest due pending job, leasing it for `lease`, and marks its document
    /// `processing`. Concurrent callers (any number of processes) never get the same job.
    async fn claim_job(&self, lease: Duration) -> Result<Option<ClaimedJob>, StoreError>;

    /// Pushes the lease of a job still being worked on; false when the lease was lost.
    async fn extend_lease(&self, lease: Lease, duration: Duration) -> Result<bool, StoreError>;

    /// Marks the job done; false when `lease` no longer holds it.
    async fn complete_job(&self, lease: Lease) -> Result<bool, StoreError>;

    /// Records a failed attempt: back to pending (document `queued`) until `retry_at`, or, with
    /// `None`, failed for good with the document `failed` and `error` shown to its owner.
    /// False when `lease` no longer holds the job.
    async fn fail_job(
        &self,
        lease: Lease,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Running jobs whose lease expired (their worker or process died) go back to pending, or
    /// fail for good once `max_attempts` were spent (a document that kills its worker every
    /// time must not loop forever). Returns how many were reclaimed or failed.
    async fn reclaim_expired_leases(&self, max_attempts: i32) -> Result<u64, StoreError>;

    async fn queue_depth(&self) -> Result<QueueDepth, StoreError>;
}
