//! `TOKEN_LIMIT_PER_MINUTE`: each user's LLM tokens per minute, exact across replicas when
//! the limiter is Redis. A chat reserves its worst case (prompt tokens + `max_tokens`)
//! atomically before calling the provider, and settles it with what it really used afterwards.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::cache::{Quota, RateLimiter};

pub struct TokenLimiter {
    limiter: Arc<dyn RateLimiter>,
    quota: Quota,
    /// When the limiter's backend is down: admit (true) or refuse.
    fail_open: bool,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over the limit; `retry_after` is `None` when the request alone exceeds a whole minute's
    /// tokens, so waiting cannot help.
    OverLimit {
        limit: u32,
        retry_after: Option<Duration>,
    },
    /// The limiter's backend is down and the limiter fails closed.
    Unavailable,
}

impl TokenLimiter {
    pub fn new(limiter: Arc<dyn RateLimiter>, quota: Quota, fail_open: bool) -> Self {
        Self {
            limiter,
            quota,
            fail_open,
        }
    }

    /// Spends `cost` tokens of `user`'s minute, or refuses without spending any.
    pub async fn reserve(&self, user: Uuid, cost: u32) -> Result<Reservation, Refused> {
        let key = format!("tokens:{user}");
        match self.limiter.check(&key, self.quota, cost).await {
            Ok(decision) if decision.allowed => Ok(Reservation {
                held: Some((self.limiter.clone(), self.quota, key)),
                reserved: cost,
            }),
            Ok(decision) => Err(Refused::OverLimit {
                limit: decision.limit,
                retry_after: decision.retry_after,
            }),
            Err(error) if self.fail_open => {
                tracing::warn!(error = %error, "token limiter unavailable: admitting the request");
                Ok(Reservation::unlimited())
            }
            Err(error) => {
                tracing::error!(error = %error, "token limiter unavailable: refusing the request");
                Err(Refused::Unavailable)
            }
        }
    }
}

/// Tokens held for one call until it is settled with what it really used.
pub struct Reservation {
    held: Option<(Arc<dyn RateLimiter>, Quota, String)>,
    reserved: u32,
}

impl Reservation {
    /// No limit applies.
    pub fn unlimited() -> Self {
        Self {
            held: None,
            reserved: 0,
        }
    }

    /// Settles the reservation with `used`, the tokens the call really took, in the background
    /// (the caller's answer does not wait for the limiter): gives back what was reserved and not
    /// used, or charges what was used beyond the reservation (a provider counted more prompt
    /// tokens than ragd's tokenizer, or ignored `max_tokens`).
    pub fn settle(self, used: u32) {
        let Some((limiter, quota, key)) = self.held else {
            return;
        };
        if used == self.reserved {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let delta = i64::from(used) - i64::from(self.reserved);
        runtime.spawn(async move {
            if let Err(error) = limiter.adjust(&key, quota, delta).await {
                tracing::warn!(error = %error, "could not settle a token reservation");
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::cache::memory::MemoryRateLimiter;

    fn limiter(per_minute: u32) -> TokenLimiter {
        let quota = Quota {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
        };
        TokenLimiter::new(Arc::new(MemoryRateLimiter::default()), quota, false)
    }

    /// Lets the settlement, which runs in the background, happen.
    async fn settled() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn what_a_call_did_not_use_is_given_back() {
        let limiter = limiter(100);
        let user = Uuid::new_v4();

        limiter.reserve(user, 60).await.unwrap().settle(10);
        settled().await;

        assert!(limiter.reserve(user, 90).await.is_ok());
        assert!(limiter.reserve(user, 1).await.is_err());
    }

    #[tokio::test]
    async fn what_a_call_used_beyond_its_reservation_is_charged() {
        let limiter = limiter(100);
        let user = Uuid::new_v4();

        limiter.reserve(user, 30).await.unwrap().settle(90);
        settled().await;

        // Charged only what it reserved, 70 would be left.
        assert!(limiter.reserve(user, 20).await.is_err());
        assert!(limiter.reserve(user, 10).await.is_ok());
    }
}
