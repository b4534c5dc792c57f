//! `TOKEN_LIMIT_PER_MINUTE`: each user's LLM tokens per minute, exact across replicas when
//! the limiter is Redis. A chat reserves its worst case (prompt tokens + `max_tokens`)
//! atomically before calling the provider, and gives back what it did not use afterwards.

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

    /// Gives back the tokens reserved beyond `used`, in the background (the caller's answer
    /// does not wait for the limiter).
    pub fn settle(self, used: u32) {
        let unused = self.reserved.saturating_sub(used);
        let Some((limiter, quota, key)) = self.held else {
            return;
        };
        if unused == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(error) = limiter.refund(&key, quota, unused).await {
                tracing::warn!(error = %error, "could not give back unused tokens");
            }
        });
    }
}
