//! `last_used_at` for API keys without a database write per request: uses are noted in memory
//! (one entry per key, the latest time wins) and written in one transaction every few seconds
//! and once more at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::{KeyUse, Store, StoreError};

/// How long `last_used_at` may lag behind a key's actual use.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Uses noted since the last flush, by key id.
#[derive(Default)]
pub struct KeyUsage {
    pending: Mutex<HashMap<Uuid, KeyUse>>,
}

impl KeyUsage {
    /// Notes that `key_id` (owned by `user_id`) was used at `at`. Constant time, no I/O.
    pub fn record(&self, user_id: Uuid, key_id: Uuid, at: DateTime<Utc>) {
        // A panic while the lock is held cannot leave the map half-written (one insert).
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.insert(
            key_id,
            KeyUse {
                user_id,
                key_id,
                at,
            },
        );
    }

    /// Writes every noted use. On failure the uses are put back (unless a newer one arrived) so
    /// the next flush retries them.
    pub async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let batch: Vec<KeyUse> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.drain().map(|(_, used)| used).collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        match store.record_api_key_use(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(err) => {
                let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
                for used in batch {
                    pending.entry(used.key_id).or_insert(used);
                }
                Err(err)
            }
        }
    }
}

/// The background flusher; [`KeyUsageFlusher::shutdown`] writes what is left.
pub struct KeyUsageFlusher {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl KeyUsageFlusher {
    pub fn start(usage: Arc<KeyUsage>, store: Arc<dyn Store>, every: Duration) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stopped.cancelled() => break,
                    _ = ticks.tick() => flush_logged(&usage, store.as_ref()).await,
                }
            }
            flush_logged(&usage, store.as_ref()).await;
        });
        Self { stop, task }
    }

    /// Stops the timer and flushes one last time.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn flush_logged(usage: &KeyUsage, store: &dyn Store) {
    if let Err(err) = usage.flush(store).await {
        tracing::warn!(error = %err, "could not record API key use; retrying at the next flush");
    }
}
