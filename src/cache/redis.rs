//! Redis implementations, shared by every replica (`REDIS_URL` set).
//!
//! Every command runs under [`COMMAND_TIMEOUT`]: a Redis that is down or stalled answers
//! `Unavailable` in half a second and the caller applies its fail-open/closed policy, instead
//! of requests piling up behind it. Keys are namespaced under `ragd:` so a shared Redis stays
//! readable.

use std::{future::Future, time::Duration};

use ::redis::{
    Client, ErrorKind, RedisError, RedisResult, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use async_trait::async_trait;

use super::{CacheError, KvCache, LimitError, Quota, RateDecision, RateLimiter, ttl_millis};

/// Upper bound on any one round trip, reconnection included.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// Upper bound on the first connection at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

const LIMITER_PREFIX: &str = "ragd:rl:";
const CACHE_PREFIX: &str = "ragd:kv:";

/// GCRA check-and-reserve in one atomic round trip; the arithmetic of `gcra.rs`, line by line.
/// The clock is the server's `TIME`, so replicas with skewed clocks still agree. The key expires
/// when its TAT passes (it then means "fully restored", the same as absent), so Redis holds only
/// keys that are currently limited. Numbers are written with `%d`: Lua's default formatting
/// would turn microsecond timestamps into lossy exponent notation.
const CHECK_SCRIPT: &str = r"
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = math.max(math.floor(60000000 / limit), 1)
local tolerance = interval * limit
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local function remaining(at)
  return math.floor(math.max(now + tolerance - at, 0) / interval)
end
if cost > limit then
  return {0, remaining(tat), tat - now, -1}
end
local new_tat = tat + cost * interval
if new_tat - now > tolerance then
  return {0, remaining(tat), tat - now, new_tat - now - tolerance}
end
if new_tat > now then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
end
return {1, remaining(new_tat), new_tat - now, -1}
";

/// Moves the TAT by `delta` intervals from now or from where it was, whichever is later:
/// back for a refund (never before now), on for a charge (whatever the quota). Drops a fully
/// restored key. The arithmetic of `Gcra::adjust`.
const ADJUST_SCRIPT: &str = r"
local limit = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = math.max(math.floor(60000000 / limit), 1)
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
local new_tat = math.max(tat + delta * interval, now)
if new_tat > now then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
else
  redis.call('DEL', KEYS[1])
end
return 0
";

/// Start-up could not reach Redis. The URL is left out of the message: it may hold a password.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to Redis at REDIS_URL: {0}")]
pub struct ConnectError(String);

/// Connects and checks that Redis answers, within a few seconds: a wrong `REDIS_URL` stops
/// start-up with a clear message rather than at the first request.
pub async fn connect(url: &str) -> Result<ConnectionManager, ConnectError> {
    let mut connection = connect_lazy(url)?;
    let ping = ::redis::cmd("PING");
    match tokio::time::timeout(CONNECT_TIMEOUT, ping.query_async::<String>(&mut connection)).await {
        Ok(Ok(_pong)) => Ok(connection),
        Ok(Err(e)) => Err(ConnectError(e.to_string())),
        Err(_elapsed) => Err(ConnectError(format!(
            "no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// A connection that is only opened (and reopened after failures) when a command needs it.
/// Fails only on a malformed URL.
pub fn connect_lazy(url: &str) -> Result<ConnectionManager, ConnectError> {
    let client = Client::open(url).map_err(|e| ConnectError(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config).map_err(|e| ConnectError(e.to_string()))
}

/// Why a round trip failed: no answer (down, refused, timed out) or a wrong answer.
enum Failure {
    Unavailable(String),
    Backend(String),
}

impl From<Failure> for LimitError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(reason) => Self::Unavailable(reason),
            Failure::Backend(reason) => Self::Backend(reason),
        }
    }
}

impl From<Failure> for CacheError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(reason) => Self::Unavailable(reason),
            Failure::Backend(reason) => Self::Backend(reason),
        }
    }
}

impl From<RedisError> for Failure {
    fn from(error: RedisError) -> Self {
        match error.kind() {
            ErrorKind::Server(_)
            | ErrorKind::Parse
            | ErrorKind::UnexpectedReturnType
            | ErrorKind::Extension => Self::Backend(error.to_string()),
            _ => Self::Unavailable(error.to_string()),
        }
    }
}

async fn bounded<T>(round_trip: impl Future<Output = RedisResult<T>>) -> Result<T, Failure> {
    match tokio::time::timeout(COMMAND_TIMEOUT, round_trip).await {
        Ok(result) => result.map_err(Failure::from),
        Err(_elapsed) => Err(Failure::Unavailable(format!(
            "no answer within {} ms",
            COMMAND_TIMEOUT.as_millis()
        ))),
    }
}

pub struct RedisRateLimiter {
    connection: ConnectionManager,
    check_script: Script,
    adjust_script: Script,
}

impl RedisRateLimiter {
    /// Scripts run by hash (`EVALSHA`); the redis crate loads them again after a Redis restart.
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            check_script: Script::new(CHECK_SCRIPT),
            adjust_script: Script::new(ADJUST_SCRIPT),
        }
    }
}

fn micros(value: i64) -> Duration {
    Duration::from_micros(u64::try_from(value).unwrap_or(0))
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, quota: Quota, cost: u32) -> Result<RateDecision, LimitError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.check_script.key(format!("{LIMITER_PREFIX}{key}"));
        invocation.arg(quota.per_minute.get()).arg(cost);
        let (allowed, remaining, reset_after, retry_after): (i64, i64, i64, i64) =
            bounded(invocation.invoke_async(&mut connection)).await?;
        Ok(RateDecision {
            allowed: allowed == 1,
            limit: quota.per_minute.get(),
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_after: micros(reset_after),
            retry_after: (retry_after >= 0).then(|| micros(retry_after)),
        })
    }

    async fn adjust(&self, key: &str, quota: Quota, delta: i64) -> Result<(), LimitError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.adjust_script.key(format!("{LIMITER_PREFIX}{key}"));
        invocation.arg(quota.per_minute.get()).arg(delta);
        bounded(invocation.invoke_async::<i64>(&mut connection)).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), LimitError> {
        let mut connection = self.connection.clone();
        let ping = ::redis::cmd("PING");
        bounded(ping.query_async::<String>(&mut connection)).await?;
        Ok(())
    }
}

pub struct RedisKvCache {
    connection: ConnectionManager,
}

impl RedisKvCache {
    pub fn new(connection: ConnectionManager) -> Self {
        Self { connection }
    }
}

#[async_trait]
impl KvCache for RedisKvCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut connection = self.connection.clone();
        let mut get = ::redis::cmd("GET");
        get.arg(format!("{CACHE_PREFIX}{key}"));
        Ok(bounded(get.query_async(&mut connection)).await?)
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.set_many(&[(key.to_owned(), value.to_vec())], ttl)
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let mut del = ::redis::cmd("DEL");
        del.arg(format!("{CACHE_PREFIX}{key}"));
        bounded(del.query_async::<i64>(&mut connection)).await?;
        Ok(())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut connection = self.connection.clone();
        let mut mget = ::redis::cmd("MGET");
        for key in keys {
            mget.arg(format!("{CACHE_PREFIX}{key}"));
        }
        Ok(bounded(mget.query_async(&mut connection)).await?)
    }

    /// One pipelined batch of `SET key value PX ttl`: a single round trip, not a transaction.
    async fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        let ttl = ttl_millis(ttl);
        let mut pipeline = ::redis::pipe();
        for (key, value) in entries {
            pipeline
                .cmd("SET")
                .arg(format!("{CACHE_PREFIX}{key}"))
                .arg(value.as_slice())
                .arg("PX")
                .arg(ttl)
                .ignore();
        }
        bounded(pipeline.query_async::<()>(&mut connection)).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
mod tests {
    use super::*;
    use crate::cache::contract_tests;

    /// The test Redis, or `None` (with one line saying so) when `TEST_REDIS_URL` is unset.
    async fn test_redis() -> Option<ConnectionManager> {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            println!("skipping: TEST_REDIS_URL not set");
            return None;
        };
        Some(connect(&url).await.expect("TEST_REDIS_URL answers"))
    }

    async fn limiter() -> Option<RedisRateLimiter> {
        test_redis().await.map(RedisRateLimiter::new)
    }

    async fn cache() -> Option<RedisKvCache> {
        test_redis().await.map(RedisKvCache::new)
    }

    /// A port nothing listens on: bound, then released.
    fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("redis://127.0.0.1:{port}")
    }

    /// Guards against a hang without asserting on timing: a hang fails the test, a slow machine
    /// does not.
    async fn within_bound<T>(future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), future)
            .await
            .expect("answered instead of hanging")
    }

    #[tokio::test]
    async fn admits_exactly_the_limit_then_denies() {
        let Some(limiter) = limiter().await else {
            return;
        };
        contract_tests::admits_exactly_the_limit_then_denies(&limiter).await;
    }

    #[tokio::test]
    async fn reports_what_the_headers_need() {
        let Some(limiter) = limiter().await else {
            return;
        };
        contract_tests::reports_what_the_headers_need(&limiter).await;
    }

    #[tokio::test]
    async fn a_cost_spends_several_units_at_once() {
        let Some(limiter) = limiter().await else {
            return;
        };
        contract_tests::a_cost_spends_several_units_at_once(&limiter).await;
    }

    #[tokio::test]
    async fn a_cost_above_the_whole_quota_is_denied_without_retry() {
        let Some(limiter) = limiter().await else {
            return;
        };
        contract_tests::a_cost_above_the_whole_quota_is_denied_without_retry(&limiter).await;
    }

    #[tokio::test]
    async fn a_refund_restores_capacity_but_never_beyond_the_quota() {
        let Some(limiter) = limiter().await else {
            return;
        };
        contract_tests::a_refund_restores_capacity_but_never_beyond_the_quota(&limiter).await;
    }

    #[tokio::test]
    async fn a_charge_past_the_quota_is_owed() {
        let Some(limiter) = limiter().await else {
            return;
        };
        contract_tests::a_charge_past_the_quota_is_owed(&limiter).await;
    }

    #[tokio::test]
    async fn keys_are_limited_independently() {
        let Some(limiter) = limiter().await else {
            return;
        };
        contract_tests::keys_are_limited_independently(&limiter).await;
    }

    #[tokio::test]
    async fn kv_round_trip_and_delete() {
        let Some(cache) = cache().await else { return };
        contract_tests::kv_round_trip_and_delete(&cache).await;
    }

    #[tokio::test]
    async fn kv_entries_expire() {
        let Some(cache) = cache().await else { return };
        contract_tests::kv_entries_expire(&cache).await;
    }

    #[tokio::test]
    async fn kv_get_many_returns_partial_hits_in_order() {
        let Some(cache) = cache().await else { return };
        contract_tests::kv_get_many_returns_partial_hits_in_order(&cache).await;
    }

    #[tokio::test]
    async fn two_limiters_on_one_redis_admit_the_limit_once_between_them() {
        let (Some(first), Some(second)) = (limiter().await, limiter().await) else {
            return;
        };
        let key = contract_tests::unique_key("replicas");
        let quota = contract_tests::quota(6);
        let mut admitted = 0;
        for _ in 0..10 {
            for limiter in [&first, &second] {
                if limiter.check(&key, quota, 1).await.unwrap().allowed {
                    admitted += 1;
                }
            }
        }
        assert_eq!(admitted, 6);
    }

    #[tokio::test]
    async fn concurrent_checks_never_admit_more_than_the_limit() {
        let Some(limiter) = limiter().await else {
            return;
        };
        let limiter = std::sync::Arc::new(limiter);
        let key = contract_tests::unique_key("concurrent");
        let quota = contract_tests::quota(10);
        let checks = (0..40).map(|_| {
            let (limiter, key) = (limiter.clone(), key.clone());
            tokio::spawn(async move { limiter.check(&key, quota, 1).await.unwrap().allowed })
        });
        let admitted = futures::future::join_all(checks)
            .await
            .into_iter()
            .filter(|allowed| *allowed.as_ref().unwrap())
            .count();
        assert_eq!(admitted, 10);
    }

    #[tokio::test]
    async fn limiter_keys_expire_with_their_quota() {
        let Some(connection) = test_redis().await else {
            return;
        };
        let limiter = RedisRateLimiter::new(connection.clone());
        let key = contract_tests::unique_key("ttl");
        let quota = contract_tests::quota(60);
        limiter.check(&key, quota, 3).await.unwrap();
        let mut connection = connection;
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(format!("{LIMITER_PREFIX}{key}"))
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(
            ttl > 0 && ttl <= 3_000,
            "expires when restored, got {ttl} ms"
        );
        limiter.refund(&key, quota, 3).await.unwrap();
        let exists: i64 = ::redis::cmd("EXISTS")
            .arg(format!("{LIMITER_PREFIX}{key}"))
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(exists, 0, "a fully refunded key is dropped");
    }

    #[tokio::test]
    async fn connecting_to_a_closed_port_fails_with_a_clear_message() {
        let err = within_bound(connect(&closed_port_url())).await.unwrap_err();
        assert!(
            err.to_string().starts_with("cannot connect to Redis"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_malformed_url_is_refused() {
        let err = connect_lazy("http://not-redis").map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[tokio::test]
    async fn a_limiter_whose_redis_is_down_answers_unavailable() {
        let limiter = RedisRateLimiter::new(connect_lazy(&closed_port_url()).unwrap());
        let quota = contract_tests::quota(5);
        let err = within_bound(limiter.check("user:x", quota, 1))
            .await
            .unwrap_err();
        assert!(matches!(err, LimitError::Unavailable(_)), "{err:?}");
        assert_eq!(err.kind(), "unavailable");
        let err = within_bound(limiter.ping()).await.unwrap_err();
        assert!(matches!(err, LimitError::Unavailable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_cache_whose_redis_is_down_answers_unavailable() {
        let cache = RedisKvCache::new(connect_lazy(&closed_port_url()).unwrap());
        let err = within_bound(cache.get("k")).await.unwrap_err();
        assert!(matches!(err, CacheError::Unavailable(_)), "{err:?}");
        let err =
            within_bound(cache.set_many(&[("k".into(), b"v".to_vec())], Duration::from_secs(1)))
                .await
                .unwrap_err();
        assert!(matches!(err, CacheError::Unavailable(_)), "{err:?}");
    }
}
