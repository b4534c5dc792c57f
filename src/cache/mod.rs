//! Shared fast state: rate limiters and a key-value cache, each behind a small trait with an
//! in-memory implementation (one process) and a Redis one (shared by every replica).
//!
//! The backend is chosen once at start-up (`REDIS_URL` set or not); nothing else in ragd
//! knows which one it is talking to.

#[cfg(test)]
mod contract_tests;
mod gcra;
pub mod memory;
pub mod redis;

use std::{num::NonZeroU32, time::Duration};

use async_trait::async_trait;

/// How much a key may spend: a burst of `per_minute` at once, then `per_minute` spread evenly
/// over each minute. The unit is whatever the caller counts (requests, tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_minute: NonZeroU32,
}

/// The answer to one check, with what the `x-ratelimit-*` and `Retry-After` headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// The quota's `per_minute`.
    pub limit: u32,
    /// How much more could be spent right now (after this check's cost, when allowed).
    pub remaining: u32,
    /// Until the key's capacity is fully restored.
    pub reset_after: Duration,
    /// When denied: how long until this same cost would be admitted. `None` when allowed, and
    /// also when denied because the cost exceeds the whole quota, so no wait would help.
    pub retry_after: Option<Duration>,
}

/// GCRA (the generic cell rate algorithm): per key, one timestamp, the "theoretical arrival
/// time" at which the key would be fully restored. Constant memory per key, no timestamp lists.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Spends `cost` from `key`'s quota if all of it fits, atomically; otherwise spends nothing.
    /// A `cost` of 0 only reports the current state. Keys are opaque to the limiter
    /// ("user:<id>", "ip:1.2.3.4", "tokens:<id>", "login:<email>").
    async fn check(&self, key: &str, quota: Quota, cost: u32) -> Result<RateDecision, LimitError>;

    /// Corrects an earlier spend by `delta` units once its real cost is known, atomically:
    /// negative gives back what was reserved and not used (never restoring more than a full
    /// quota), positive spends what was used beyond it, whatever is left (past the quota, the
    /// key is refused until the excess has come back).
    async fn adjust(&self, key: &str, quota: Quota, delta: i64) -> Result<(), LimitError>;

    /// Gives back `amount` of an earlier reservation that was not used (a request reserved its
    /// worst case and used less).
    async fn refund(&self, key: &str, quota: Quota, amount: u32) -> Result<(), LimitError> {
        self.adjust(key, quota, -i64::from(amount)).await
    }

    /// Spends `amount` more than an earlier reservation held (a request used more than the
    /// worst case it reserved, as a provider may report).
    async fn charge(&self, key: &str, quota: Quota, amount: u32) -> Result<(), LimitError> {
        self.adjust(key, quota, i64::from(amount)).await
    }

    /// "memory" or "redis", for logs, metrics and the readiness report.
    fn backend(&self) -> &'static str;

    /// Whether the backend answers, for `/health/ready`.
    async fn ping(&self) -> Result<(), LimitError>;
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The backend could not be reached in time (down, refused, timed out). The caller decides
    /// whether to fail open or closed (`RATE_LIMIT_FAIL_OPEN`).
    #[error("rate limiter backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error or an unexpected reply.
    #[error("rate limiter backend error: {0}")]
    Backend(String),
}

impl LimitError {
    /// A stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Backend(_) => "backend",
        }
    }
}

/// Bytes by key with a time to live. Used for embeddings and API-key lookups, where a miss only
/// costs a recomputation or a database query.
#[async_trait]
pub trait KvCache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Stores `value` for `ttl` (rounded up to whole milliseconds, at least one).
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    async fn delete(&self, key: &str) -> Result<(), CacheError>;

    /// One answer per key, in order; one round trip however many keys.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError>;

    /// Stores every entry with the same `ttl`; one round trip however many entries.
    async fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl: Duration,
    ) -> Result<(), CacheError>;

    /// "memory" or "redis".
    fn backend(&self) -> &'static str;
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend could not be reached in time. Callers treat the cache as empty.
    #[error("cache backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error or an unexpected reply.
    #[error("cache backend error: {0}")]
    Backend(String),
}

impl CacheError {
    /// A stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Backend(_) => "backend",
        }
    }
}

/// TTLs are kept in whole milliseconds (Redis's `PX` unit), never zero.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_nanos().div_ceil(1_000_000))
        .unwrap_or(u64::MAX)
        .max(1)
}
