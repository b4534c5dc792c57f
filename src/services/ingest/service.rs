//! The documents service: what the routes and `ragd ingest` call. It owns the pipeline shared
//! by the workers and wakes them when it queues a job.

use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use tokio::sync::Notify;
use uuid::Uuid;

use super::pipeline::Pipeline;
use super::upload::{self, ReceivedFile, UploadError, Uploaded};
use super::worker::{IngestWorkers, WorkerSettings};
use super::{ChunkSettings, ChunkSettingsError, Chunker, ExtractLimits};
use crate::config::Settings;
use crate::services::embeddings::Embedder;
use crate::store::{Document, DocumentPage, Store, StoreError};

/// Uploads, lists, deletes and reindexes documents; runs the ingestion workers.
pub struct Ingest {
    pipeline: Arc<Pipeline>,
    notify: Arc<Notify>,
    max_upload_bytes: u64,
    workers: WorkerSettings,
}

impl Ingest {
    pub fn new(
        settings: &Settings,
        store: Arc<dyn Store>,
        embedder: Arc<dyn Embedder>,
    ) -> Result<Self, ChunkSettingsError> {
        let chunker = Chunker::new(ChunkSettings {
            max_tokens: settings.chunk_tokens,
            overlap: settings.chunk_overlap,
        })?;
        Ok(Self {
            pipeline: Arc::new(Pipeline {
                store,
                embedder,
                chunker: Arc::new(chunker),
                uploads_dir: settings.uploads_dir(),
                limits: ExtractLimits::default(),
                batch_size: settings.embedding_batch_size,
            }),
            notify: Arc::new(Notify::new()),
            max_upload_bytes: settings.max_upload_bytes,
            workers: WorkerSettings::new(settings.ingest_workers, settings.ingest_max_attempts),
        })
    }

    /// Replaces the worker settings (tests shorten leases and backoff).
    pub fn with_worker_settings(mut self, workers: WorkerSettings) -> Self {
        self.workers = workers;
        self
    }

    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes
    }

    pub fn uploads_dir(&self) -> &std::path::Path {
        &self.pipeline.uploads_dir
    }

    /// Starts `INGEST_WORKERS` workers on the current runtime.
    pub fn start_workers(&self) -> IngestWorkers {
        IngestWorkers::start(self.pipeline.clone(), self.workers, self.notify.clone())
    }

    /// Streams one uploaded file into the uploads directory (see [`upload::receive_file`]).
    pub async fn receive<S, E>(
        &self,
        raw_filename: &str,
        body: S,
    ) -> Result<ReceivedFile, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        upload::receive_file(
            &self.pipeline.uploads_dir,
            raw_filename,
            self.max_upload_bytes,
            body,
        )
        .await
    }

    /// Makes a received file a queued document (or finds the duplicate) and wakes a worker.
    pub async fn register(
        &self,
        user_id: Uuid,
        file: ReceivedFile,
        metadata: serde_json::Value,
    ) -> Result<Uploaded, UploadError> {
        let uploaded =
            upload::register(self.pipeline.store.as_ref(), user_id, file, metadata).await?;
        if uploaded.created {
            self.notify.notify_one();
        }
        Ok(uploaded)
    }

    pub async fn get(&self, user_id: Uuid, id: Uuid) -> Result<Option<Document>, StoreError> {
        self.pipeline.store.document(user_id, id).await
    }

    pub async fn list(
        &self,
        user_id: Uuid,
        page: DocumentPage,
    ) -> Result<Vec<Document>, StoreError> {
        self.pipeline.store.list_documents(user_id, page).await
    }

    /// Deletes the document, its chunks and vectors, then its file. A worker processing it
    /// finds it gone when it tries to store the chunks, and stores nothing.
    pub async fn delete(&self, user_id: Uuid, id: Uuid) -> Result<Option<Document>, StoreError> {
        let deleted = self.pipeline.store.delete_document(user_id, id).await?;
        if let Some(document) = &deleted
            && let Err(err) = upload::remove_stored_file(&self.pipeline.uploads_dir, document).await
        {
            // The row is gone, so the file is unreachable; log it for the operator.
            tracing::warn!(document_id = %document.id, error = %err, "cannot remove a deleted document's file");
        }
        Ok(deleted)
    }

    /// Queues the document for processing again and wakes a worker.
    pub async fn reindex(&self, user_id: Uuid, id: Uuid) -> Result<Option<Document>, StoreError> {
        let queued = self.pipeline.store.reindex_document(user_id, id).await?;
        if queued.is_some() {
            self.notify.notify_one();
        }
        Ok(queued)
    }
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("uploads_dir", &self.pipeline.uploads_dir)
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}
