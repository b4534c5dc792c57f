//! The GCRA arithmetic, on plain numbers. The in-memory limiter runs it directly; the Redis
//! limiter's Lua script (`redis.rs`) is the same arithmetic line by line, so both backends
//! answer alike (the shared tests in `contract_tests.rs` hold them to it).
//!
//! Times are microseconds on the backend's own clock. A key's only state is its TAT
//! ("theoretical arrival time"): the moment its quota would be fully restored. A TAT at or
//! before now is the same as no state at all, which is what lets idle keys be dropped.

use std::time::Duration;

use super::{Quota, RateDecision};

const MICROS_PER_MINUTE: u64 = 60_000_000;

pub(super) struct Gcra {
    limit: u32,
    /// Time one unit of quota takes to come back. Whole microseconds, so quotas are exact up to
    /// 60 million a minute; above that the refill is capped at one unit per microsecond.
    interval: u64,
    /// How far ahead of now the TAT may run: a whole quota's worth of intervals.
    tolerance: u64,
}

/// The outcome of a check and the TAT to store (`None`: leave the state as it was, because
/// the check was denied or spent nothing on a restored key).
pub(super) struct Checked {
    pub decision: RateDecision,
    pub new_tat: Option<u64>,
}

impl Gcra {
    pub fn new(quota: Quota) -> Self {
        let limit = quota.per_minute.get();
        let interval = (MICROS_PER_MINUTE / u64::from(limit)).max(1);
        Self {
            limit,
            interval,
            tolerance: interval * u64::from(limit),
        }
    }

    pub fn check(&self, stored_tat: Option<u64>, now: u64, cost: u32) -> Checked {
        let tat = stored_tat.unwrap_or(now).max(now);
        let denied = |retry_after: Option<u64>| Checked {
            decision: self.decision(false, now, tat, retry_after),
            new_tat: None,
        };
        if cost > self.limit {
            return denied(None);
        }
        let new_tat = tat + u64::from(cost) * self.interval;
        if new_tat - now > self.tolerance {
            return denied(Some(new_tat - now - self.tolerance));
        }
        Checked {
            decision: self.decision(true, now, new_tat, None),
            new_tat: (new_tat > now).then_some(new_tat),
        }
    }

    /// The TAT after correcting a spend by `delta` units (see `RateLimiter::adjust`), or `None`
    /// when the key is fully restored (drop it). A charge is taken whatever the quota; a
    /// refund never moves the TAT before now.
    pub fn adjust(&self, stored_tat: Option<u64>, now: u64, delta: i64) -> Option<u64> {
        let tat = stored_tat.unwrap_or(now).max(now);
        let moved = delta.unsigned_abs().saturating_mul(self.interval);
        let new_tat = if delta < 0 {
            tat.saturating_sub(moved).max(now)
        } else {
            tat.saturating_add(moved)
        };
        (new_tat > now).then_some(new_tat)
    }

    fn decision(
        &self,
        allowed: bool,
        now: u64,
        tat: u64,
        retry_after: Option<u64>,
    ) -> RateDecision {
        let capacity = (now + self.tolerance).saturating_sub(tat) / self.interval;
        RateDecision {
            allowed,
            limit: self.limit,
            remaining: u32::try_from(capacity).unwrap_or(self.limit),
            reset_after: Duration::from_micros(tat - now),
            retry_after: retry_after.map(Duration::from_micros),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn gcra(per_minute: u32) -> Gcra {
        Gcra::new(Quota {
            per_minute: NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN),
        })
    }

    #[test]
    fn the_quota_refills_one_interval_at_a_time() {
        let gcra = gcra(60);
        let mut tat = None;
        for _ in 0..60 {
            let checked = gcra.check(tat, 0, 1);
            assert!(checked.decision.allowed);
            tat = checked.new_tat;
        }
        let denied = gcra.check(tat, 0, 1).decision;
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after, Some(Duration::from_secs(1)));
        // One second later exactly one more request fits.
        let later = gcra.check(tat, 1_000_000, 1);
        assert!(later.decision.allowed);
        assert_eq!(later.decision.remaining, 0);
        assert!(!gcra.check(later.new_tat, 1_000_000, 1).decision.allowed);
    }

    #[test]
    fn a_stale_tat_counts_as_fully_restored() {
        let gcra = gcra(10);
        let checked = gcra.check(Some(5), 1_000_000_000, 1);
        assert_eq!(checked.decision.remaining, 9);
        assert_eq!(gcra.adjust(Some(5), 1_000_000_000, -1), None);
    }

    #[test]
    fn limits_above_a_million_per_second_still_make_progress() {
        let gcra = gcra(u32::MAX);
        let checked = gcra.check(None, 0, 1);
        assert!(checked.decision.allowed);
        assert!(checked.new_tat > Some(0));
    }
}
