//! The rate-limit policy over a [`RateLimiter`]: which quota applies to what, what a backend
//! failure means (`RATE_LIMIT_FAIL_OPEN`), and the brute-force guard on logins.
//!
//! Keys: `user:<id>` for authenticated requests, `ip:<addr>` for the unauthenticated auth
//! routes, `login-ip:<addr>` and `login-email:<email>` for failed logins.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use crate::cache::{LimitError, Quota, RateDecision, RateLimiter};

/// The limiter key of a user's request quota is this and the user's id.
const USER_KEY_PREFIX: &str = "user:";

/// Failed logins allowed per client IP and, separately, per email, each minute.
pub const LOGIN_FAILURES_PER_MINUTE: NonZeroU32 = NonZeroU32::MIN.saturating_add(9);

/// Why a request may not proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the quota: 429 with `Retry-After`.
    Limited(RateDecision),
    /// The limiter's backend failed and `RATE_LIMIT_FAIL_OPEN=false`: 503.
    Unavailable,
}

/// The state of the shared limiter backend, for `/health/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimiterHealth {
    /// In-process limiter: nothing to reach.
    InProcess,
    Reachable,
    /// Unreachable; `fail_open` says whether requests are still admitted.
    Unreachable {
        error: String,
        fail_open: bool,
    },
}

pub struct RateLimits {
    limiter: Arc<dyn RateLimiter>,
    requests: Quota,
    login_failures: Quota,
    fail_open: bool,
}

impl RateLimits {
    pub fn new(limiter: Arc<dyn RateLimiter>, per_minute: u32, fail_open: bool) -> Self {
        Self {
            limiter,
            requests: Quota {
                per_minute: NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN),
            },
            login_failures: Quota {
                per_minute: LOGIN_FAILURES_PER_MINUTE,
            },
            fail_open,
        }
    }

    /// Counts one request against a user's quota (`RATE_LIMIT_PER_MINUTE`).
    pub async fn check_user(&self, user_id: uuid::Uuid) -> Result<Option<RateDecision>, Refusal> {
        // Built without `format!`: this runs on every authenticated request.
        let mut id = uuid::Uuid::encode_buffer();
        let mut key = String::with_capacity(USER_KEY_PREFIX.len() + id.len());
        key.push_str(USER_KEY_PREFIX);
        key.push_str(user_id.hyphenated().encode_lower(&mut id));
        self.spend(&key, self.requests).await
    }

    /// Counts one unauthenticated request against its client address's quota.
    pub async fn check_ip(&self, ip: Option<IpAddr>) -> Result<Option<RateDecision>, Refusal> {
        self.spend(&format!("ip:{}", ip_label(ip)), self.requests)
            .await
    }

    /// Reserves one failed login for this address and this email before the password is
    /// checked; [`RateLimits::login_succeeded`] gives the reservation back. Refused when either
    /// has used up its failures for the minute, whatever the password.
    pub async fn admit_login(&self, ip: Option<IpAddr>, email: &str) -> Result<(), Refusal> {
        let by_ip = login_ip_key(ip);
        self.spend(&by_ip, self.login_failures).await?;
        if let Err(refusal) = self
            .spend(&login_email_key(email), self.login_failures)
            .await
        {
            self.give_back(&by_ip, self.login_failures).await;
            return Err(refusal);
        }
        Ok(())
    }

    /// A login that succeeded does not count as a failure.
    pub async fn login_succeeded(&self, ip: Option<IpAddr>, email: &str) {
        self.give_back(&login_ip_key(ip), self.login_failures).await;
        self.give_back(&login_email_key(email), self.login_failures)
            .await;
    }

    pub async fn health(&self) -> LimiterHealth {
        if self.limiter.backend() == "memory" {
            return LimiterHealth::InProcess;
        }
        match self.limiter.ping().await {
            Ok(()) => LimiterHealth::Reachable,
            Err(err) => LimiterHealth::Unreachable {
                error: err.to_string(),
                fail_open: self.fail_open,
            },
        }
    }

    pub fn backend(&self) -> &'static str {
        self.limiter.backend()
    }

    /// `Ok(Some)` admitted with the quota's state, `Ok(None)` admitted because the backend
    /// failed and the policy is to fail open.
    async fn spend(&self, key: &str, quota: Quota) -> Result<Option<RateDecision>, Refusal> {
        match self.limiter.check(key, quota, 1).await {
            Ok(decision) if decision.allowed => Ok(Some(decision)),
            Ok(decision) => Err(Refusal::Limited(decision)),
            Err(err) => {
                self.backend_failed(&err);
                if self.fail_open {
                    Ok(None)
                } else {
                    Err(Refusal::Unavailable)
                }
            }
        }
    }

    async fn give_back(&self, key: &str, quota: Quota) {
        if let Err(err) = self.limiter.refund(key, quota, 1).await {
            self.backend_failed(&err);
        }
    }

    fn backend_failed(&self, err: &LimitError) {
        metrics::counter!("rate_limiter_errors_total", "kind" => err.kind()).increment(1);
        tracing::warn!(
            error = %err,
            backend = self.limiter.backend(),
            fail_open = self.fail_open,
            "rate limiter unavailable: {}",
            if self.fail_open { "admitting requests unlimited" } else { "refusing requests" }
        );
    }
}

/// The address a quota belongs to. An IPv6 client is one /64 network: a single host is
/// routinely given a whole /64, and would otherwise have as many quotas as addresses.
fn ip_label(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let network = std::net::Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX));
            format!("{network}/64")
        }
    }
}

fn login_ip_key(ip: Option<IpAddr>) -> String {
    format!("login-ip:{}", ip_label(ip))
}

/// Emails are compared as registered: trimmed and lower-cased.
fn login_email_key(email: &str) -> String {
    format!("login-email:{}", email.trim().to_lowercase())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryRateLimiter;

    fn limits() -> RateLimits {
        RateLimits::new(Arc::new(MemoryRateLimiter::default()), 60, true)
    }

    #[test]
    fn an_ipv6_client_is_its_64_network_and_a_mapped_ipv4_its_address() {
        let ip = |text: &str| Some(text.parse::<IpAddr>().unwrap());
        assert_eq!(ip_label(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(
            ip_label(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip_label(ip("2001:db8:1:2::9"))
        );
        assert_ne!(
            ip_label(ip("2001:db8:1:3::1")),
            ip_label(ip("2001:db8:1:2::1"))
        );
        assert_eq!(ip_label(ip("::ffff:203.0.113.7")), "203.0.113.7");
        assert_eq!(ip_label(ip("203.0.113.7")), "203.0.113.7");
        assert_eq!(ip_label(None), "unknown");
    }

    #[tokio::test]
    async fn failed_logins_are_limited_per_email_whatever_the_address() {
        let limits = limits();
        for n in 0..LOGIN_FAILURES_PER_MINUTE.get() {
            let ip = IpAddr::from([10, 0, 0, u8::try_from(n).unwrap()]);
            limits
                .admit_login(Some(ip), "Ada@example.com ")
                .await
                .unwrap();
        }
        let other_ip = Some(IpAddr::from([10, 0, 1, 1]));
        let refused = limits.admit_login(other_ip, "ada@example.com").await;
        assert!(matches!(refused, Err(Refusal::Limited(_))), "{refused:?}");
        // The refused attempt did not eat into the new address's own allowance.
        for _ in 0..LOGIN_FAILURES_PER_MINUTE.get() {
            limits
                .admit_login(other_ip, "bob@example.com")
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn successful_logins_do_not_count() {
        let limits = limits();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..3 * LOGIN_FAILURES_PER_MINUTE.get() {
            limits.admit_login(ip, "ada@example.com").await.unwrap();
            limits.login_succeeded(ip, "ada@example.com").await;
        }
    }
}
