//! The usage writer: chats hand their [`UsageEvent`]s to a channel and a background task
//! writes them in batches (one transaction per batch, not one per call), flushing at least
//! every [`FLUSH_EVERY`] and on shutdown.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::store::{Store, UsageEvent};

/// Events written in one transaction at most.
const MAX_BATCH: usize = 256;
/// Longest time an event waits in memory.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Events queued before new ones are dropped (with a warning): the hot path never waits on
/// the database.
const QUEUE_CAPACITY: usize = 10_000;

enum Command {
    Record(UsageEvent),
    /// Write everything queued so far, then answer.
    Flush(oneshot::Sender<()>),
}

/// The sending side, cheap to share.
pub struct UsageRecorder {
    commands: mpsc::Sender<Command>,
    writer: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl UsageRecorder {
    /// Starts the writer task on the current runtime.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (commands, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(write_batches(store, receiver, stopped));
        Self {
            commands,
            writer: Mutex::new(Some((stop, task))),
        }
    }

    /// Queues an event without waiting.
    pub fn record(&self, event: UsageEvent) {
        if let Err(error) = self.commands.try_send(Command::Record(event)) {
            tracing::warn!(reason = %error, "usage event dropped: the writer is behind or stopped");
        }
    }

    /// Waits until every event queued before this call is written.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }

    /// Writes what is queued and stops the writer; later events are dropped.
    pub async fn shutdown(&self) {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((stop, task)) = writer {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

async fn write_batches(
    store: Arc<dyn Store>,
    mut receiver: mpsc::Receiver<Command>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut batch: Vec<UsageEvent> = Vec::new();
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    loop {
        tokio::select! {
            command = receiver.recv() => match command {
                Some(Command::Record(event)) => {
                    batch.push(event);
                    if batch.len() >= MAX_BATCH {
                        write(store.as_ref(), &mut batch).await;
                    }
                }
                Some(Command::Flush(done)) => {
                    write(store.as_ref(), &mut batch).await;
                    let _ = done.send(());
                }
                None => break,
            },
            _ = ticker.tick() => write(store.as_ref(), &mut batch).await,
            _ = &mut stopped => break,
        }
    }
    receiver.close();
    let mut waiting = Vec::new();
    while let Ok(command) = receiver.try_recv() {
        match command {
            Command::Record(event) => batch.push(event),
            Command::Flush(done) => waiting.push(done),
        }
    }
    write(store.as_ref(), &mut batch).await;
    for done in waiting {
        let _ = done.send(());
    }
}

/// Writes and empties `batch`. A failed write is logged and dropped: accounting must not
/// take the service down with the database.
async fn write(store: &dyn Store, batch: &mut Vec<UsageEvent>) {
    if batch.is_empty() {
        return;
    }
    for chunk in batch.chunks(MAX_BATCH) {
        if let Err(error) = store.record_usage(chunk).await {
            tracing::error!(error = %error, events = chunk.len(), "usage events lost");
        }
    }
    batch.clear();
}
