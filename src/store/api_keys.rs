//! API keys: programs' credentials, stored only as a SHA-256 hash and a display prefix.
//!
//! Tenancy: every method takes the owner's user id and filters by it, except
//! [`ApiKeyStore::api_key_owner`], which is how a request *becomes* a user (the hash is the
//! secret; nobody can ask for a key they do not already hold).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StoreError, User};

/// A stored key as its owner may see it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// `rk_` and the first hex digits: enough to recognise a key in a list.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Updated in batches, so it may lag actual use by a few seconds.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What creating a key needs; the id and time are assigned by the store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    /// Lower-case hex SHA-256 of the whole key.
    pub key_hash: String,
}

/// The result of looking a presented key up: which key it is and whose.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyOwner {
    pub key_id: Uuid,
    #[sqlx(flatten)]
    pub user: User,
}

/// One key's latest use, for [`ApiKeyStore::record_api_key_use`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUse {
    pub user_id: Uuid,
    pub key_id: Uuid,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait ApiKeyStore {
    /// Stores a new key unless the owner already has `limit` keys (then `None`). The check and
    /// the insert are one statement.
    async fn create_api_key(
        &self,
        user_id: Uuid,
        key: NewApiKey,
        limit: u32,
    ) -> Result<Option<ApiKey>, StoreError>;
    /// The owner's keys, oldest first.
    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, StoreError>;
    /// Deletes the owner's key; false when the owner has no such key (another user's key
    /// included). Deleting is revoking: the next lookup by hash finds nothing, on every replica.
    async fn delete_api_key(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError>;
    /// The key with this hash and its owner, in one query.
    async fn api_key_owner(&self, key_hash: &str) -> Result<Option<KeyOwner>, StoreError>;
    /// Sets `last_used_at` for many keys in one transaction (one batch of a few seconds' use);
    /// a key deleted meanwhile is skipped.
    async fn record_api_key_use(&self, uses: &[KeyUse]) -> Result<(), StoreError>;
}
