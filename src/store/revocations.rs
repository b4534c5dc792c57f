//! The revocation log: one row each time what a replica may have cached about a user's
//! credentials stops being true (an API key revoked, the user deleted). It is written in the
//! same transaction as the change itself and read by every replica's credential cache
//! (`services::auth::revocations`), which is how a revocation reaches replicas and processes
//! that did not make it. Rows older than [`KEEP_FOR_MICROS`] are pruned whenever one is added.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreError;

/// How long a revocation stays in the log: far longer than any reader looks back.
pub const KEEP_FOR_MICROS: i64 = 3_600_000_000;

/// One logged revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Revocation {
    /// Increases with each row (in commit order on SQLite; allocation order on Postgres).
    pub seq: i64,
    /// Everything cached about this user's credentials is void.
    pub user_id: Uuid,
    /// When the revoking process wrote it, in microseconds since the Unix epoch.
    pub revoked_at: i64,
}

#[async_trait]
pub trait RevocationStore {
    /// The revocations written at or after `since` (microseconds since the Unix epoch), in
    /// `seq` order.
    async fn revocations_since(&self, since: i64) -> Result<Vec<Revocation>, StoreError>;
}

/// Microseconds since the Unix epoch, the log's clock.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
