//! Follows the store's revocation log so this replica's [`CredentialCache`] forgets what other
//! replicas (and operators' `ragd user delete`) revoked.
//!
//! Each poll reads the last [`LOOK_BACK`] of the log rather than "rows after the last one
//! seen": on Postgres a row can become visible after rows with higher `seq` (transactions commit
//! in any order), and replicas' clocks differ a little. Rows already applied are remembered and
//! skipped, so re-reading them costs nothing but the query.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::credential_cache::CredentialCache;
use crate::store::revocations::now_micros;
use crate::store::{Store, StoreError};

/// How long another replica's revocation may go unnoticed here.
pub const SYNC_EVERY: Duration = Duration::from_millis(500);

/// How much of the log each poll reads: room for slow commits and clock skew between replicas.
const LOOK_BACK: Duration = Duration::from_secs(60);

/// What the follower has applied, and when it last read the log completely.
pub struct LogFollower {
    cache: Arc<CredentialCache>,
    /// `seq` → `revoked_at` of the rows applied within the look-back window.
    applied: HashMap<i64, i64>,
    last_read: Option<Instant>,
}

impl LogFollower {
    pub fn new(cache: Arc<CredentialCache>) -> Self {
        Self {
            cache,
            applied: HashMap::new(),
            last_read: None,
        }
    }

    /// Reads the log once and forgets the users revoked since the last read. After a gap long
    /// enough for rows to have left the window (or before the first read), forgets everyone.
    pub async fn poll(&mut self, store: &dyn Store) -> Result<usize, StoreError> {
        let began = Instant::now();
        let window = i64::try_from(LOOK_BACK.as_micros()).unwrap_or(i64::MAX);
        let since = now_micros().saturating_sub(window);
        let rows = match store.revocations_since(since).await {
            Ok(rows) => rows,
            Err(err) => {
                self.cache.mark_unsynced();
                return Err(err);
            }
        };
        if self
            .last_read
            .is_none_or(|last| began.saturating_duration_since(last) > LOOK_BACK / 2)
        {
            self.cache.forget_all();
        }
        let mut forgotten = 0;
        for row in rows {
            if self.applied.insert(row.seq, row.revoked_at).is_none() {
                self.cache.forget_user(row.user_id);
                forgotten += 1;
            }
        }
        self.applied.retain(|_, revoked_at| *revoked_at >= since);
        self.last_read = Some(began);
        self.cache.mark_synced(began);
        Ok(forgotten)
    }
}

/// The background poll; stopped by [`RevocationFollower::shutdown`].
pub struct RevocationFollower {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl RevocationFollower {
    pub fn start(cache: Arc<CredentialCache>, store: Arc<dyn Store>) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut follower = LogFollower::new(cache);
            let mut ticks = tokio::time::interval(SYNC_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    () = stopped.cancelled() => break,
                    _ = ticks.tick() => match follower.poll(store.as_ref()).await {
                        Ok(_) if failing => {
                            failing = false;
                            tracing::info!("revocation log readable again: credential cache back in use");
                        }
                        Ok(_) => {}
                        // Logged once per outage; until it ends the cache goes stale and is
                        // bypassed, so requests read the database (and fail there if it is down).
                        Err(err) if !failing => {
                            failing = true;
                            tracing::warn!(error = %err, "cannot read the revocation log: credential cache bypassed");
                        }
                        Err(_) => {}
                    },
                }
            }
        });
        Self { stop, task }
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
