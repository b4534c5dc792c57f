//! The behaviour every [`RateLimiter`] and [`KvCache`] must show, written once and run against
//! each backend by its own test module. Keys are random so tests share one Redis in parallel.

#![allow(clippy::unwrap_used)]

use std::{num::NonZeroU32, time::Duration};

use uuid::Uuid;

use super::{KvCache, Quota, RateLimiter};

pub fn quota(per_minute: u32) -> Quota {
    Quota {
        per_minute: NonZeroU32::new(per_minute).unwrap(),
    }
}

pub fn unique_key(kind: &str) -> String {
    format!("test:{kind}:{}", Uuid::new_v4())
}

/// Quotas are small (an interval of 12 s or more), so no capacity comes back while a test runs.
pub async fn admits_exactly_the_limit_then_denies(limiter: &dyn RateLimiter) {
    let key = unique_key("limit");
    let quota = quota(5);
    for expected_remaining in (0..5).rev() {
        let decision = limiter.check(&key, quota, 1).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, expected_remaining);
        assert_eq!(decision.retry_after, None);
    }
    let denied = limiter.check(&key, quota, 1).await.unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    let retry_after = denied.retry_after.unwrap();
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(12));
}

pub async fn reports_what_the_headers_need(limiter: &dyn RateLimiter) {
    let key = unique_key("headers");
    let quota = quota(3);
    let first = limiter.check(&key, quota, 1).await.unwrap();
    assert_eq!(first.limit, 3);
    assert_eq!(first.remaining, 2);
    assert!(first.reset_after > Duration::ZERO && first.reset_after <= Duration::from_secs(20));
    limiter.check(&key, quota, 2).await.unwrap();
    let denied = limiter.check(&key, quota, 1).await.unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.limit, 3);
    // Fully restored only after the whole minute's worth; the next unit comes back sooner.
    assert!(denied.reset_after > Duration::from_secs(40));
    assert!(denied.reset_after <= Duration::from_secs(60));
    assert!(denied.retry_after.unwrap() < denied.reset_after);
    // A zero-cost check reports without spending.
    let peek = limiter.check(&key, quota, 0).await.unwrap();
    assert!(peek.allowed);
    assert_eq!(peek.remaining, 0);
}

pub async fn a_cost_spends_several_units_at_once(limiter: &dyn RateLimiter) {
    let key = unique_key("cost");
    let quota = quota(10);
    let reserved = limiter.check(&key, quota, 7).await.unwrap();
    assert!(reserved.allowed);
    assert_eq!(reserved.remaining, 3);
    let too_much = limiter.check(&key, quota, 4).await.unwrap();
    assert!(!too_much.allowed, "7 + 4 exceeds 10");
    assert_eq!(too_much.remaining, 3, "a denied check spends nothing");
    assert!(too_much.retry_after.is_some());
    let fits = limiter.check(&key, quota, 3).await.unwrap();
    assert!(fits.allowed);
    assert_eq!(fits.remaining, 0);
}

pub async fn a_cost_above_the_whole_quota_is_denied_without_retry(limiter: &dyn RateLimiter) {
    let key = unique_key("oversized");
    let decision = limiter.check(&key, quota(10), 11).await.unwrap();
    assert!(!decision.allowed);
    assert_eq!(decision.retry_after, None, "no wait would make it fit");
    assert_eq!(decision.remaining, 10);
}

pub async fn a_refund_restores_capacity_but_never_beyond_the_quota(limiter: &dyn RateLimiter) {
    let key = unique_key("refund");
    let quota = quota(10);
    limiter.check(&key, quota, 8).await.unwrap();
    limiter.refund(&key, quota, 5).await.unwrap();
    let after = limiter.check(&key, quota, 1).await.unwrap();
    assert!(after.allowed);
    assert_eq!(after.remaining, 6, "10 - 8 + 5 - 1");

    limiter.refund(&key, quota, 1000).await.unwrap();
    let restored = limiter.check(&key, quota, 1).await.unwrap();
    assert_eq!(
        restored.remaining, 9,
        "a refund never restores more than a full quota"
    );

    limiter
        .refund(&unique_key("never-seen"), quota, 3)
        .await
        .unwrap();
}

pub async fn a_charge_past_the_quota_is_owed(limiter: &dyn RateLimiter) {
    let key = unique_key("charge");
    let quota = quota(10); // one unit comes back every 6 s
    limiter.check(&key, quota, 5).await.unwrap();
    limiter.charge(&key, quota, 10).await.unwrap();
    let owed = limiter.check(&key, quota, 1).await.unwrap();
    assert!(!owed.allowed);
    assert_eq!(owed.remaining, 0);
    // 15 units spent of 10: the next one fits once 6 have come back, 36 s from now.
    let retry_after = owed.retry_after.unwrap();
    assert!(
        retry_after > Duration::from_secs(35) && retry_after <= Duration::from_secs(36),
        "{retry_after:?}"
    );

    let fresh = unique_key("charge-fresh");
    limiter.charge(&fresh, quota, 3).await.unwrap();
    assert_eq!(limiter.check(&fresh, quota, 0).await.unwrap().remaining, 7);
}

pub async fn keys_are_limited_independently(limiter: &dyn RateLimiter) {
    let (busy, other) = (unique_key("busy"), unique_key("other"));
    let quota = quota(2);
    for _ in 0..2 {
        limiter.check(&busy, quota, 1).await.unwrap();
    }
    assert!(!limiter.check(&busy, quota, 1).await.unwrap().allowed);
    assert!(limiter.check(&other, quota, 1).await.unwrap().allowed);
}

pub async fn kv_round_trip_and_delete(cache: &dyn KvCache) {
    let key = unique_key("kv");
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache
        .set(&key, b"\x00binary\xff", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        cache.get(&key).await.unwrap(),
        Some(b"\x00binary\xff".to_vec())
    );
    cache
        .set(&key, b"replaced", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get(&key).await.unwrap(), Some(b"replaced".to_vec()));
    cache.delete(&key).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache.delete(&key).await.unwrap();
}

/// Sleeps past a millisecond TTL: the assertion holds however slow the machine is.
pub async fn kv_entries_expire(cache: &dyn KvCache) {
    let (short, long) = (unique_key("short"), unique_key("long"));
    cache
        .set(&short, b"gone soon", Duration::from_millis(1))
        .await
        .unwrap();
    cache
        .set(&long, b"stays", Duration::from_secs(60))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(cache.get(&short).await.unwrap(), None);
    assert_eq!(cache.get(&long).await.unwrap(), Some(b"stays".to_vec()));
}

pub async fn kv_get_many_returns_partial_hits_in_order(cache: &dyn KvCache) {
    let keys: Vec<String> = (0..4).map(|_| unique_key("many")).collect();
    let ttl = Duration::from_secs(60);
    cache
        .set_many(
            &[
                (keys[0].clone(), b"zero".to_vec()),
                (keys[2].clone(), b"two".to_vec()),
            ],
            ttl,
        )
        .await
        .unwrap();
    cache.set(&keys[3], b"three", ttl).await.unwrap();
    let found = cache.get_many(&keys).await.unwrap();
    assert_eq!(
        found,
        vec![
            Some(b"zero".to_vec()),
            None,
            Some(b"two".to_vec()),
            Some(b"three".to_vec())
        ]
    );
    assert!(cache.get_many(&[]).await.unwrap().is_empty());
    cache.set_many(&[], ttl).await.unwrap();
}
