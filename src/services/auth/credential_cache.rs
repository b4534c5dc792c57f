//! Resolved credentials kept in memory, so an authenticated request costs a hash and a map
//! lookup instead of a database read, while revocation still takes effect everywhere:
//! - on the replica that revokes, at once ([`CredentialCache::forget_user`]);
//! - on every other replica and process, within a poll of the revocation log
//!   ([`super::revocations::RevocationFollower`], every half second);
//! - and when that log cannot be read (database unreachable), or no read has completed for
//!   [`STALE_AFTER`] (follower stopped), the cache is not trusted at all: every request reads
//!   the database, as with the cache off.
//!
//! Only successful resolutions are cached, keyed by the SHA-256 of the bearer token, so a
//! stream of invalid tokens neither fills the cache nor skips verification.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lru::LruCache;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::accounts::Principal;

/// The SHA-256 of a bearer token: the cache key (and, hex-encoded, an API key's stored hash).
pub type Fingerprint = [u8; 32];

/// How many credentials one replica remembers (about 200 bytes each).
pub const CAPACITY: NonZeroUsize = NonZeroUsize::MIN.saturating_add(9_999);

/// Without a successful read of the revocation log for this long, cached answers may miss a
/// revocation, so none are used. Far longer than the poll interval: under overload a poll can
/// be late, and dropping the cache then would send every request to the database at the
/// worst moment. A poll that fails distrusts the cache at once instead.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

pub fn fingerprint(token: &str) -> Fingerprint {
    Sha256::digest(token.as_bytes()).into()
}

/// What a bearer token resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Shared with every request that presents the same credential.
    pub principal: Arc<Principal>,
    /// The API key used, if the token was one (its `last_used_at` is updated on each use).
    pub key_id: Option<Uuid>,
    /// An access token's `exp` (seconds since the Unix epoch): past it the entry is void.
    pub expires_at: Option<u64>,
}

struct Entry {
    resolved: Resolved,
    cached_until: Instant,
}

struct State {
    entries: LruCache<Fingerprint, Entry>,
    /// Bumped by every forget. A resolution that started before a forget may have read what
    /// was just revoked, so [`CredentialCache::insert`] refuses it.
    generation: u64,
    /// When the last successful read of the revocation log began.
    synced_at: Option<Instant>,
}

pub struct CredentialCache {
    /// Zero: the cache is off.
    ttl: Duration,
    state: Mutex<State>,
    /// `credential_cache_lookups_total{result}`, registered once: a lookup by labels on every
    /// request would cost more than the cache lookup itself.
    hits: metrics::Counter,
    misses: metrics::Counter,
}

impl CredentialCache {
    pub fn new(ttl: Duration, capacity: NonZeroUsize) -> Self {
        Self {
            ttl,
            state: Mutex::new(State {
                entries: LruCache::new(capacity),
                generation: 0,
                synced_at: None,
            }),
            hits: metrics::counter!("credential_cache_lookups_total", "result" => "hit"),
            misses: metrics::counter!("credential_cache_lookups_total", "result" => "miss"),
        }
    }

    /// Whether caching is on at all (`AUTH_CACHE_SECONDS` > 0).
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// Every map operation is a single insert, lookup or removal, so a panic while the lock
    /// was held cannot leave it half-updated: a poisoned lock is safe to keep using.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached resolution of `fingerprint`, if the cache is trusted right now, the entry
    /// is younger than the TTL, and (for an access token) `now_unix` is before its expiry.
    /// Counted as a hit or a miss (when the cache is on).
    pub fn get(&self, fingerprint: &Fingerprint, now_unix: u64) -> Option<Resolved> {
        if !self.enabled() {
            return None;
        }
        let found = self.lookup(fingerprint, now_unix);
        match found {
            Some(_) => self.hits.increment(1),
            None => self.misses.increment(1),
        }
        found
    }

    fn lookup(&self, fingerprint: &Fingerprint, now_unix: u64) -> Option<Resolved> {
        let now = Instant::now();
        let mut state = self.state();
        if state
            .synced_at
            .is_none_or(|synced| now.saturating_duration_since(synced) >= STALE_AFTER)
        {
            return None;
        }
        let entry = state.entries.get(fingerprint)?;
        let expired = entry
            .resolved
            .expires_at
            .is_some_and(|expires_at| now_unix >= expires_at);
        if expired || now >= entry.cached_until {
            state.entries.pop(fingerprint);
            return None;
        }
        Some(entry.resolved.clone())
    }

    /// Read before resolving from the database; pass it back to [`CredentialCache::insert`].
    pub fn generation(&self) -> u64 {
        self.state().generation
    }

    /// Remembers a resolution made from the database, unless anything was forgotten since it
    /// began (at `generation`): then its answer may already be revoked.
    pub fn insert(&self, fingerprint: Fingerprint, resolved: Resolved, generation: u64) {
        if !self.enabled() {
            return;
        }
        let cached_until = Instant::now() + self.ttl;
        let mut state = self.state();
        if state.generation == generation {
            state.entries.put(
                fingerprint,
                Entry {
                    resolved,
                    cached_until,
                },
            );
        }
    }

    /// Drops every credential of `user_id` (a key revoked, the user deleted).
    pub fn forget_user(&self, user_id: Uuid) {
        let mut state = self.state();
        state.generation += 1;
        let theirs: Vec<Fingerprint> = state
            .entries
            .iter()
            .filter(|(_, entry)| entry.resolved.principal.id == user_id)
            .map(|(fingerprint, _)| *fingerprint)
            .collect();
        for fingerprint in theirs {
            state.entries.pop(&fingerprint);
        }
    }

    /// Drops everything: revocations may have been missed.
    pub fn forget_all(&self) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.clear();
    }

    /// Records that the revocation log was read completely, as of `read_began`.
    pub fn mark_synced(&self, read_began: Instant) {
        self.state().synced_at = Some(read_began);
    }

    /// Records that the revocation log could not be read: stop trusting the cache until it is.
    pub fn mark_unsynced(&self) {
        self.state().synced_at = None;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.state().entries.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::domain::Role;

    const NOW: u64 = 1_000_000;

    fn resolved(user: Uuid, expires_at: Option<u64>) -> Resolved {
        Resolved {
            principal: Arc::new(Principal {
                id: user,
                email: format!("{user}@example.com"),
                role: Role::User,
                created_at: DateTime::UNIX_EPOCH,
            }),
            key_id: None,
            expires_at,
        }
    }

    fn synced_cache(ttl: Duration) -> CredentialCache {
        let cache = CredentialCache::new(ttl, CAPACITY);
        cache.mark_synced(Instant::now());
        cache
    }

    fn cached(cache: &CredentialCache, token: &str, entry: Resolved) -> Fingerprint {
        let key = fingerprint(token);
        cache.insert(key, entry, cache.generation());
        key
    }

    #[test]
    fn a_resolution_is_reused_while_the_log_is_followed() {
        let cache = synced_cache(Duration::from_secs(60));
        let user = Uuid::new_v4();
        let key = cached(&cache, "rk_a", resolved(user, None));
        assert_eq!(cache.get(&key, NOW), Some(resolved(user, None)));
        assert_eq!(cache.get(&fingerprint("rk_b"), NOW), None);
    }

    #[test]
    fn nothing_is_used_before_the_first_sync_or_once_it_is_stale() {
        let cache = CredentialCache::new(Duration::from_secs(60), CAPACITY);
        let key = cached(&cache, "rk_a", resolved(Uuid::new_v4(), None));
        assert_eq!(cache.get(&key, NOW), None, "never synced");

        cache.mark_synced(Instant::now());
        assert!(cache.get(&key, NOW).is_some());

        let long_ago = Instant::now()
            .checked_sub(STALE_AFTER + Duration::from_millis(1))
            .unwrap();
        cache.mark_synced(long_ago);
        assert_eq!(cache.get(&key, NOW), None, "the log was not read lately");

        cache.mark_synced(Instant::now());
        cache.mark_unsynced();
        assert_eq!(cache.get(&key, NOW), None, "the last read failed");
    }

    #[test]
    fn an_access_token_is_not_served_past_its_expiry() {
        let cache = synced_cache(Duration::from_secs(60));
        let key = cached(&cache, "jwt", resolved(Uuid::new_v4(), Some(NOW + 1)));
        assert!(cache.get(&key, NOW).is_some());
        assert_eq!(cache.get(&key, NOW + 1), None);
        assert_eq!(cache.len(), 0, "the expired entry is dropped");
    }

    #[test]
    fn entries_live_no_longer_than_the_ttl_and_a_zero_ttl_turns_caching_off() {
        let short = synced_cache(Duration::from_millis(20));
        let key = cached(&short, "rk_a", resolved(Uuid::new_v4(), None));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(short.get(&key, NOW), None);

        let off = synced_cache(Duration::ZERO);
        let key = cached(&off, "rk_a", resolved(Uuid::new_v4(), None));
        assert_eq!(off.get(&key, NOW), None);
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn forgetting_a_user_drops_all_their_credentials_and_only_theirs() {
        let cache = synced_cache(Duration::from_secs(60));
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let ada_key = cached(&cache, "rk_ada", resolved(ada, None));
        let ada_jwt = cached(&cache, "jwt_ada", resolved(ada, Some(NOW + 60)));
        let bob_key = cached(&cache, "rk_bob", resolved(bob, None));

        cache.forget_user(ada);
        assert_eq!(cache.get(&ada_key, NOW), None);
        assert_eq!(cache.get(&ada_jwt, NOW), None);
        assert!(cache.get(&bob_key, NOW).is_some());

        cache.forget_all();
        assert_eq!(cache.get(&bob_key, NOW), None);
    }

    #[test]
    fn a_resolution_that_raced_a_revocation_is_not_cached() {
        let cache = synced_cache(Duration::from_secs(60));
        let user = Uuid::new_v4();
        // Resolution begins (reads the database)...
        let began = cache.generation();
        // ...the key is revoked meanwhile...
        cache.forget_user(user);
        // ...and its possibly stale answer arrives.
        cache.insert(fingerprint("rk_a"), resolved(user, None), began);
        assert_eq!(cache.get(&fingerprint("rk_a"), NOW), None);
    }

    #[test]
    fn the_least_recently_used_credential_makes_room() {
        let cache = CredentialCache::new(Duration::from_secs(60), NonZeroUsize::MIN);
        cache.mark_synced(Instant::now());
        let first = cached(&cache, "rk_a", resolved(Uuid::new_v4(), None));
        let second = cached(&cache, "rk_b", resolved(Uuid::new_v4(), None));
        assert_eq!(cache.get(&first, NOW), None);
        assert!(cache.get(&second, NOW).is_some());
    }
}
