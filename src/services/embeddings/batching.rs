//! Coalescing: concurrent callers share provider calls.
//!
//! Every caller's texts go, in pieces of at most `max_batch`, to one collector task. The
//! collector packs pieces into a batch until it is full or a short window (a couple of
//! milliseconds) has passed since the batch's first piece, then sends the batch upstream with
//! at most `max_in_flight` calls outstanding. Each piece gets back exactly its own vectors, in
//! order; a failed call fails every piece in it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::{Embedder, EmbeddingError, metrics};

/// How batches are formed and how many may be in flight.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Most texts per upstream call (`EMBEDDING_BATCH_SIZE`).
    pub max_batch: usize,
    /// How long a batch waits for company after its first piece.
    pub window: Duration,
    /// Most upstream calls outstanding at once.
    pub max_in_flight: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_batch: 100,
            window: Duration::from_millis(2),
            max_in_flight: 4,
        }
    }
}

type Reply = Result<Vec<Vec<f32>>, EmbeddingError>;

/// Some of one caller's texts, with where to send their vectors.
struct Piece {
    texts: Vec<String>,
    reply: oneshot::Sender<Reply>,
}

/// An [`Embedder`] that coalesces concurrent calls into shared batches for `inner`.
pub struct BatchingEmbedder {
    model: String,
    dimension: usize,
    max_batch: usize,
    pieces: mpsc::Sender<Piece>,
}

impl BatchingEmbedder {
    /// Starts the collector task (it ends when this embedder is dropped). Needs a Tokio runtime.
    pub fn spawn(inner: Arc<dyn Embedder>, settings: BatchSettings) -> Self {
        let settings = BatchSettings {
            max_batch: settings.max_batch.max(1),
            max_in_flight: settings.max_in_flight.max(1),
            ..settings
        };
        let (pieces, receiver) = mpsc::channel(1024);
        let embedder = Self {
            model: inner.model().to_owned(),
            dimension: inner.dimension(),
            max_batch: settings.max_batch,
            pieces,
        };
        tokio::spawn(collect(inner, receiver, settings));
        embedder
    }
}

#[async_trait::async_trait]
impl Embedder for BatchingEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let mut replies = Vec::new();
        for part in texts.chunks(self.max_batch) {
            let (reply, answer) = oneshot::channel();
            let piece = Piece {
                texts: part.to_vec(),
                reply,
            };
            self.pieces.send(piece).await.map_err(|_| stopped())?;
            replies.push(answer);
        }
        let mut vectors = Vec::with_capacity(texts.len());
        for answer in replies {
            vectors.extend(answer.await.map_err(|_| stopped())??);
        }
        Ok(vectors)
    }
}

fn stopped() -> EmbeddingError {
    EmbeddingError::Unavailable {
        reason: "the embedding batcher has stopped".into(),
    }
}

/// The collector: forms batches and dispatches them until every sender is gone.
async fn collect(
    inner: Arc<dyn Embedder>,
    mut receiver: mpsc::Receiver<Piece>,
    settings: BatchSettings,
) {
    let in_flight = Arc::new(Semaphore::new(settings.max_in_flight));
    let mut carried: Option<Piece> = None;
    loop {
        let first = match carried.take() {
            Some(piece) => piece,
            None => match receiver.recv().await {
                Some(piece) => piece,
                None => return,
            },
        };
        let deadline = Instant::now() + settings.window;
        let mut size = first.texts.len();
        let mut batch = vec![first];
        while size < settings.max_batch {
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(Some(piece)) if size + piece.texts.len() > settings.max_batch => {
                    carried = Some(piece);
                    break;
                }
                Ok(Some(piece)) => {
                    size += piece.texts.len();
                    batch.push(piece);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            dispatch(inner.as_ref(), batch).await;
            drop(permit);
        });
    }
}

/// One upstream call for the whole batch, its vectors handed back piece by piece.
async fn dispatch(inner: &dyn Embedder, batch: Vec<Piece>) {
    let texts: Vec<String> = batch
        .iter()
        .flat_map(|piece| piece.texts.iter().cloned())
        .collect();
    metrics::upstream_call(texts.len());
    let result = inner.embed(&texts).await.and_then(|vectors| {
        if vectors.len() == texts.len() {
            Ok(vectors)
        } else {
            Err(EmbeddingError::InvalidResponse {
                reason: format!("{} vectors for {} texts", vectors.len(), texts.len()),
            })
        }
    });
    match result {
        Ok(vectors) => {
            let mut vectors = vectors.into_iter();
            for piece in batch {
                let own: Vec<Vec<f32>> = vectors.by_ref().take(piece.texts.len()).collect();
                // A caller that gave up no longer listens; nothing to do.
                let _ = piece.reply.send(Ok(own));
            }
        }
        Err(err) => {
            metrics::upstream_failure(&err);
            for piece in batch {
                let _ = piece.reply.send(Err(err.clone()));
            }
        }
    }
}
