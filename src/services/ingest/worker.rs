//! The ingestion workers: `INGEST_WORKERS` tasks that claim jobs from the store's queue and
//! run the [`Pipeline`] on them, plus one housekeeping task that reclaims expired leases and
//! publishes the queue depth.
//!
//! Nothing lives only in memory: a job is a row with a lease. A worker that dies (task, process
//! or machine) simply stops renewing its lease, and the job is claimed again once it expires.
//! Workers wake at once when an upload [`notify`](IngestWorkers::notifier)s them and poll
//! otherwise, so jobs queued by another replica are found too.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::metrics;
use super::pipeline::{Pipeline, ProcessError, Processed};
use crate::store::{ClaimedJob, Lease};

/// How the queue is worked.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub workers: usize,
    /// Attempts before a document is `failed` for good (`INGEST_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// How long a claim lasts without renewal; renewed every third of it while processing.
    pub lease: Duration,
    /// How often idle workers look for jobs queued elsewhere, and leases are reclaimed.
    pub poll_interval: Duration,
    /// Wait before the first retry; doubled for each further attempt, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl WorkerSettings {
    pub fn new(workers: usize, max_attempts: u32) -> Self {
        Self {
            workers,
            max_attempts,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(2),
            base_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
        }
    }

    fn backoff(&self, attempt: i32) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(16);
        self.base_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// The running workers. Dropping this does not stop them; [`shutdown`](Self::shutdown) does.
pub struct IngestWorkers {
    stop: CancellationToken,
    notify: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl IngestWorkers {
    /// Starts the workers and the housekeeper on the current runtime.
    pub fn start(pipeline: Arc<Pipeline>, settings: WorkerSettings, notify: Arc<Notify>) -> Self {
        let stop = CancellationToken::new();
        let mut tasks: Vec<JoinHandle<()>> = (0..settings.workers)
            .map(|_| {
                let worker = Worker {
                    pipeline: pipeline.clone(),
                    settings,
                    notify: notify.clone(),
                    stop: stop.clone(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        tasks.push(tokio::spawn(housekeep(
            pipeline,
            settings,
            notify.clone(),
            stop.clone(),
        )));
        Self {
            stop,
            notify,
            tasks,
        }
    }

    /// Wakes a worker; called after a job was queued.
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Stops claiming; jobs in progress are handed back to the queue at once.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

struct Worker {
    pipeline: Arc<Pipeline>,
    settings: WorkerSettings,
    notify: Arc<Notify>,
    stop: CancellationToken,
}

impl Worker {
    async fn run(self) {
        while !self.stop.is_cancelled() {
            match self.pipeline.store.claim_job(self.settings.lease).await {
                Ok(Some(job)) => self.work_on(job).await,
                Ok(None) => self.idle().await,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot claim ingestion jobs");
                    self.idle().await;
                }
            }
        }
    }

    async fn idle(&self) {
        tokio::select! {
            () = self.notify.notified() => {}
            () = tokio::time::sleep(self.settings.poll_interval) => {}
            () = self.stop.cancelled() => {}
        }
    }

    #[tracing::instrument(skip_all, fields(document_id = %job.document.id, attempt = job.attempt))]
    async fn work_on(&self, job: ClaimedJob) {
        let outcome = tokio::select! {
            result = self.pipeline.process(&job.document) => Some(result),
            () = self.keep_lease(job.lease) => None,
            () = self.stop.cancelled() => {
                self.hand_back(job.lease).await;
                return;
            }
        };
        let store = &self.pipeline.store;
        let recorded = match outcome {
            None => {
                tracing::warn!("lease lost (taken over after it expired): abandoning the job");
                return;
            }
            Some(Ok(Processed::Ready {
                chunks,
                extraction,
                embedding,
            })) => {
                metrics::document_ready(chunks, extraction, embedding);
                tracing::info!(chunks, "document ready");
                store.complete_job(job.lease).await
            }
            Some(Ok(Processed::Deleted)) => {
                tracing::info!("document deleted while processing: nothing stored");
                return;
            }
            Some(Err(err)) => self.record_failure(&job, &err).await,
        };
        if let Err(err) = recorded {
            // The lease expires and the job is processed again: idempotent, so nothing is lost.
            tracing::warn!(error = %err, "cannot record the job's outcome");
        }
    }

    async fn record_failure(
        &self,
        job: &ClaimedJob,
        err: &ProcessError,
    ) -> Result<bool, crate::store::StoreError> {
        let attempts_left =
            u32::try_from(job.attempt).unwrap_or(u32::MAX) < self.settings.max_attempts;
        let retry_at = (err.is_retryable() && attempts_left).then(|| {
            crate::store::now()
                + TimeDelta::from_std(self.settings.backoff(job.attempt)).unwrap_or(TimeDelta::MAX)
        });
        metrics::attempt_failed(err.kind(), retry_at.is_none());
        tracing::warn!(error = %err, kind = err.kind(), retrying = retry_at.is_some(), "ingestion failed");
        self.pipeline
            .store
            .fail_job(job.lease, &err.to_string(), retry_at)
            .await
    }

    /// Renews the lease every third of its length; returns only when it was lost.
    async fn keep_lease(&self, lease: Lease) {
        let mut every = tokio::time::interval(self.settings.lease / 3);
        every.tick().await;
        loop {
            every.tick().await;
            match self
                .pipeline
                .store
                .extend_lease(lease, self.settings.lease)
                .await
            {
                Ok(true) => {}
                Ok(false) => return,
                // Keep working: the next renewal may get through before the lease runs out.
                Err(err) => tracing::warn!(error = %err, "cannot renew the job's lease"),
            }
        }
    }

    /// Shutdown in the middle of a job: it goes back to the queue, due at once.
    async fn hand_back(&self, lease: Lease) {
        let result = self
            .pipeline
            .store
            .fail_job(
                lease,
                "interrupted by a shutdown",
                Some(crate::store::now()),
            )
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot hand the job back; its lease will expire");
        }
    }
}

/// Reclaims expired leases and publishes the queue depth, every poll interval.
async fn housekeep(
    pipeline: Arc<Pipeline>,
    settings: WorkerSettings,
    notify: Arc<Notify>,
    stop: CancellationToken,
) {
    let max_attempts = i32::try_from(settings.max_attempts).unwrap_or(i32::MAX);
    let mut every = tokio::time::interval(settings.poll_interval);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        match pipeline.store.reclaim_expired_leases(max_attempts).await {
            Ok(0) => {}
            Ok(reclaimed) => {
                tracing::info!(reclaimed, "reclaimed ingestion jobs whose worker stopped");
                notify.notify_waiters();
            }
            Err(err) => tracing::warn!(error = %err, "cannot reclaim expired leases"),
        }
        match pipeline.store.queue_depth().await {
            Ok(depth) => metrics::queue_depth(depth),
            Err(err) => tracing::warn!(error = %err, "cannot read the queue depth"),
        }
    }
}
