//! In-process implementations, for a single replica (no `REDIS_URL`).
//!
//! The rate limiter is a small GCRA over a map rather than `governor`: the trait must give back
//! unused token reservations and charge overruns (`adjust`), which governor's state cannot do; the trait takes the
//! quota per call while governor fixes it per limiter; and running the very arithmetic of the
//! Redis script (`gcra.rs`) keeps the two backends observably identical. The state per key is one
//! `u64`, and the map is bounded: keys whose quota is fully restored are dropped every minute,
//! and at capacity the keys closest to restored are evicted first.

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use lru::LruCache;

use super::{
    CacheError, KvCache, LimitError, Quota, RateDecision, RateLimiter, gcra::Gcra, ttl_millis,
};

/// Enough for every user and client IP a single replica sees in a minute; about 100 bytes each.
pub const DEFAULT_MAX_KEYS: NonZeroUsize = NonZeroUsize::MIN.saturating_add(99_999);
/// How often restored keys are dropped, in microseconds (a minute).
const SWEEP_EVERY_MICROS: u64 = 60_000_000;

pub struct MemoryRateLimiter {
    /// Microseconds are counted from here: a monotonic clock, immune to wall-clock jumps.
    epoch: Instant,
    max_keys: usize,
    state: Mutex<LimiterState>,
}

struct LimiterState {
    tats: HashMap<String, u64>,
    last_sweep: u64,
}

impl MemoryRateLimiter {
    pub fn new(max_keys: NonZeroUsize) -> Self {
        Self {
            epoch: Instant::now(),
            max_keys: max_keys.get(),
            state: Mutex::new(LimiterState {
                tats: HashMap::new(),
                last_sweep: 0,
            }),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// A panic while the lock was held cannot leave the map half-updated (every update is a
    /// single insert or remove), so a poisoned lock is safe to keep using.
    fn state(&self) -> MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn tracked_keys(&self) -> usize {
        self.state().tats.len()
    }
}

impl Default for MemoryRateLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_KEYS)
    }
}

impl LimiterState {
    /// Stores `key`'s new TAT, making room first when the key is new.
    fn set(&mut self, key: &str, tat: u64, now: u64, max_keys: usize) {
        match self.tats.get_mut(key) {
            Some(stored) => *stored = tat,
            None => {
                self.make_room(now, max_keys);
                self.tats.insert(key.to_owned(), tat);
            }
        }
    }

    /// Makes room for one more key: drops restored keys once a minute or when full, and if the
    /// map is still full, evicts the eighth of the keys nearest to restored (they lose the least
    /// by being forgotten). Amortized constant time per insert.
    fn make_room(&mut self, now: u64, max_keys: usize) {
        let sweep_due = now.saturating_sub(self.last_sweep) >= SWEEP_EVERY_MICROS;
        if sweep_due || self.tats.len() >= max_keys {
            self.tats.retain(|_, tat| *tat > now);
            self.last_sweep = now;
        }
        if self.tats.len() >= max_keys {
            let mut tats: Vec<u64> = self.tats.values().copied().collect();
            let evict = (tats.len() / 8).max(1);
            let (_, threshold, _) = tats.select_nth_unstable(evict - 1);
            let threshold = *threshold;
            self.tats.retain(|_, tat| *tat > threshold);
        }
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, quota: Quota, cost: u32) -> Result<RateDecision, LimitError> {
        let now = self.now();
        let mut state = self.state();
        let checked = Gcra::new(quota).check(state.tats.get(key).copied(), now, cost);
        if let Some(new_tat) = checked.new_tat {
            state.set(key, new_tat, now, self.max_keys);
        }
        Ok(checked.decision)
    }

    async fn adjust(&self, key: &str, quota: Quota, delta: i64) -> Result<(), LimitError> {
        let now = self.now();
        let mut state = self.state();
        match Gcra::new(quota).adjust(state.tats.get(key).copied(), now, delta) {
            Some(new_tat) => state.set(key, new_tat, now, self.max_keys),
            None => {
                state.tats.remove(key);
            }
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<(), LimitError> {
        Ok(())
    }
}

/// An LRU of byte values bounded by entry count, each entry with its own expiry.
pub struct MemoryKvCache {
    entries: Mutex<LruCache<String, Entry>>,
}

struct Entry {
    value: Vec<u8>,
    expires_at: Instant,
}

impl MemoryKvCache {
    pub fn new(max_entries: NonZeroUsize) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(max_entries)),
        }
    }

    /// See [`MemoryRateLimiter::state`]: every update is a single LRU operation.
    fn entries(&self) -> MutexGuard<'_, LruCache<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn fresh(entries: &mut LruCache<String, Entry>, key: &str, now: Instant) -> Option<Vec<u8>> {
    match entries.get(key) {
        Some(entry) if entry.expires_at > now => Some(entry.value.clone()),
        Some(_) => {
            entries.pop(key);
            None
        }
        None => None,
    }
}

fn put(entries: &mut LruCache<String, Entry>, key: &str, value: &[u8], ttl: Duration) {
    let ttl = Duration::from_millis(ttl_millis(ttl));
    let entry = Entry {
        value: value.to_vec(),
        expires_at: Instant::now() + ttl,
    };
    entries.put(key.to_owned(), entry);
}

#[async_trait]
impl KvCache for MemoryKvCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(fresh(&mut self.entries(), key, Instant::now()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        put(&mut self.entries(), key, value, ttl);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries().pop(key);
        Ok(())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        let now = Instant::now();
        let mut entries = self.entries();
        Ok(keys
            .iter()
            .map(|key| fresh(&mut entries, key, now))
            .collect())
    }

    async fn set_many(
        &self,
        entries: &[(String, Vec<u8>)],
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let mut cache = self.entries();
        for (key, value) in entries {
            put(&mut cache, key, value, ttl);
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cache::contract_tests;

    fn limiter() -> MemoryRateLimiter {
        MemoryRateLimiter::default()
    }

    fn cache() -> MemoryKvCache {
        MemoryKvCache::new(NonZeroUsize::new(1000).unwrap())
    }

    #[tokio::test]
    async fn admits_exactly_the_limit_then_denies() {
        contract_tests::admits_exactly_the_limit_then_denies(&limiter()).await;
    }

    #[tokio::test]
    async fn reports_what_the_headers_need() {
        contract_tests::reports_what_the_headers_need(&limiter()).await;
    }

    #[tokio::test]
    async fn a_cost_spends_several_units_at_once() {
        contract_tests::a_cost_spends_several_units_at_once(&limiter()).await;
    }

    #[tokio::test]
    async fn a_cost_above_the_whole_quota_is_denied_without_retry() {
        contract_tests::a_cost_above_the_whole_quota_is_denied_without_retry(&limiter()).await;
    }

    #[tokio::test]
    async fn a_refund_restores_capacity_but_never_beyond_the_quota() {
        contract_tests::a_refund_restores_capacity_but_never_beyond_the_quota(&limiter()).await;
    }

    #[tokio::test]
    async fn a_charge_past_the_quota_is_owed() {
        contract_tests::a_charge_past_the_quota_is_owed(&limiter()).await;
    }

    #[tokio::test]
    async fn keys_are_limited_independently() {
        contract_tests::keys_are_limited_independently(&limiter()).await;
    }

    #[tokio::test]
    async fn kv_round_trip_and_delete() {
        contract_tests::kv_round_trip_and_delete(&cache()).await;
    }

    #[tokio::test]
    async fn kv_entries_expire() {
        contract_tests::kv_entries_expire(&cache()).await;
    }

    #[tokio::test]
    async fn kv_get_many_returns_partial_hits_in_order() {
        contract_tests::kv_get_many_returns_partial_hits_in_order(&cache()).await;
    }

    #[tokio::test]
    async fn the_limiter_never_tracks_more_than_its_bound() {
        let limiter = MemoryRateLimiter::new(NonZeroUsize::new(64).unwrap());
        let quota = contract_tests::quota(5);
        for i in 0..1000 {
            limiter.check(&format!("ip:{i}"), quota, 1).await.unwrap();
            assert!(limiter.tracked_keys() <= 64);
        }
        // A key still being limited survives: the evicted ones are those nearest to restored.
        let busy = "user:busy";
        for _ in 0..5 {
            limiter.check(busy, quota, 1).await.unwrap();
        }
        limiter.check("ip:one-more", quota, 1).await.unwrap();
        assert!(!limiter.check(busy, quota, 1).await.unwrap().allowed);
    }

    #[tokio::test]
    async fn a_fully_refunded_key_is_forgotten() {
        let limiter = limiter();
        let quota = contract_tests::quota(5);
        limiter.check("tokens:a", quota, 3).await.unwrap();
        limiter.refund("tokens:a", quota, 3).await.unwrap();
        assert_eq!(limiter.tracked_keys(), 0);
    }

    #[tokio::test]
    async fn the_lru_forgets_the_least_recently_used_entry_first() {
        let cache = MemoryKvCache::new(NonZeroUsize::new(2).unwrap());
        let ttl = Duration::from_secs(60);
        cache.set("a", b"1", ttl).await.unwrap();
        cache.set("b", b"2", ttl).await.unwrap();
        cache.get("a").await.unwrap();
        cache.set("c", b"3", ttl).await.unwrap();
        assert_eq!(cache.get("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(cache.get("b").await.unwrap(), None);
        assert_eq!(cache.get("c").await.unwrap(), Some(b"3".to_vec()));
    }
}
