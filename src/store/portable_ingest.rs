//! Documents, the ingestion queue and chunk writes: SQL that is the same on SQLite and
//! PostgreSQL, written once and instantiated per backend by [`impl_portable_ingest_stores!`].
//!
//! The places where the backends differ are named by the backend type itself:
//! `Self::CLAIM_JOB_SQL` (Postgres adds `FOR UPDATE SKIP LOCKED`), `Self::BEGIN_WRITE` (SQLite
//! takes the write lock up front) and `Self::embedding_value` (a little-endian f32 BLOB for
//! SQLite, a pgvector `vector`).

/// The `documents` columns every query reads, in [`Document`](super::Document)'s field order.
macro_rules! document_columns {
    () => {
        "id, user_id, filename, content_type, size_bytes, sha256, status, error, chunk_count, \
         metadata, storage_path, embedding_model, created_at, updated_at"
    };
}

/// Implements `DocumentStore`, `IngestQueue` and `ChunkStore` for a type with a `pool` field,
/// `CLAIM_JOB_SQL` and `BEGIN_WRITE` constants and an `embedding_value(&[f32])` function.
macro_rules! impl_portable_ingest_stores {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::store::DocumentStore for $store {
            async fn create_document(
                &self,
                document: $crate::store::NewDocument,
            ) -> Result<$crate::store::Created, $crate::store::StoreError> {
                let now = $crate::store::now();
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                let inserted: Option<$crate::store::Document> = sqlx::query_as(concat!(
                    "INSERT INTO documents (id, user_id, filename, content_type, size_bytes, \
                     sha256, status, error, chunk_count, metadata, storage_path, \
                     embedding_model, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'queued', NULL, 0, $7, $8, NULL, $9, $9) \
                     ON CONFLICT (user_id, sha256) DO NOTHING RETURNING ",
                    $crate::store::portable_ingest::document_columns!()
                ))
                .bind(document.id)
                .bind(document.user_id)
                .bind(&document.filename)
                .bind(&document.content_type)
                .bind(document.size_bytes)
                .bind(&document.sha256)
                .bind(sqlx::types::Json(&document.metadata))
                .bind(&document.storage_path)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(inserted) = inserted else {
                    let existing: $crate::store::Document = sqlx::query_as(concat!(
                        "SELECT ",
                        $crate::store::portable_ingest::document_columns!(),
                        " FROM documents WHERE user_id = $1 AND sha256 = $2"
                    ))
                    .bind(document.user_id)
                    .bind(&document.sha256)
                    .fetch_one(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    return Ok($crate::store::Created::Existing(existing));
                };
                sqlx::query(
                    "INSERT INTO ingest_jobs (document_id, state, attempts, run_after, \
                     created_at, updated_at) VALUES ($1, 'pending', 0, $2, $2, $2)",
                )
                .bind(inserted.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok($crate::store::Created::New(inserted))
            }

            async fn document(
                &self,
                user_id: ::uuid::Uuid,
                id: ::uuid::Uuid,
            ) -> Result<Option<$crate::store::Document>, $crate::store::StoreError> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::portable_ingest::document_columns!(),
                    " FROM documents WHERE id = $1 AND user_id = $2"
                ))
                .bind(id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn list_documents(
                &self,
                user_id: ::uuid::Uuid,
                page: $crate::store::DocumentPage,
            ) -> Result<Vec<$crate::store::Document>, $crate::store::StoreError> {
                Ok(sqlx::query_as(concat!(
                    "SELECT ",
                    $crate::store::portable_ingest::document_columns!(),
                    " FROM documents WHERE user_id = $1 \
                      AND ($2 IS NULL OR id < $2) AND ($3 IS NULL OR status = $3) \
                      ORDER BY id DESC LIMIT $4"
                ))
                .bind(user_id)
                .bind(page.before)
                .bind(page.status.map($crate::store::DocumentStatus::as_str))
                .bind(i64::from(page.limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_document(
                &self,
                user_id: ::uuid::Uuid,
                id: ::uuid::Uuid,
            ) -> Result<Option<$crate::store::Document>, $crate::store::StoreError> {
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                let deleted: Option<$crate::store::Document> = sqlx::query_as(concat!(
                    "DELETE FROM documents WHERE id = $1 AND user_id = $2 RETURNING ",
                    $crate::store::portable_ingest::document_columns!()
                ))
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
                if deleted.is_some() {
                    // Explicit rather than by cascade, so every index kept by triggers on
                    // `chunks` (keyword, vector) sees the deletes on both backends.
                    sqlx::query("DELETE FROM chunks WHERE document_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(deleted)
            }

            async fn reindex_document(
                &self,
                user_id: ::uuid::Uuid,
                id: ::uuid::Uuid,
            ) -> Result<Option<$crate::store::Document>, $crate::store::StoreError> {
                let now = $crate::store::now();
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                let queued: Option<$crate::store::Document> = sqlx::query_as(concat!(
                    "UPDATE documents SET status = 'queued', error = NULL, updated_at = $3 \
                     WHERE id = $1 AND user_id = $2 RETURNING ",
                    $crate::store::portable_ingest::document_columns!()
                ))
                .bind(id)
                .bind(user_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if queued.is_some() {
                    sqlx::query(
                        "INSERT INTO ingest_jobs (document_id, state, attempts, run_after, \
                         created_at, updated_at) VALUES ($1, 'pending', 0, $2, $2, $2) \
                         ON CONFLICT (document_id) DO UPDATE SET state = 'pending', \
                         attempts = 0, run_after = $2, locked_until = NULL, last_error = NULL, \
                         updated_at = $2",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(queued)
            }

            async fn reindex_stale_documents(
                &self,
                model: &str,
            ) -> Result<u64, $crate::store::StoreError> {
                let now = $crate::store::now();
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                let queued = sqlx::query(
                    "UPDATE documents SET status = 'queued', updated_at = $2 \
                     WHERE embedding_model IS NOT NULL AND embedding_model <> $1 \
                     AND status IN ('ready', 'failed')",
                )
                .bind(model)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query(
                    "UPDATE ingest_jobs SET state = 'pending', attempts = 0, run_after = $2, \
                     locked_until = NULL, last_error = NULL, updated_at = $2 \
                     WHERE state IN ('done', 'failed') AND document_id IN \
                     (SELECT id FROM documents WHERE embedding_model IS NOT NULL \
                      AND embedding_model <> $1 AND status = 'queued')",
                )
                .bind(model)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(queued)
            }
        }

        #[::async_trait::async_trait]
        impl $crate::store::IngestQueue for $store {
            async fn claim_job(
                &self,
                lease: ::std::time::Duration,
            ) -> Result<Option<$crate::store::ClaimedJob>, $crate::store::StoreError> {
                let now = $crate::store::now();
                let locked_until = now + $crate::store::portable_ingest::time_delta(lease);
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                let claimed: Option<(::uuid::Uuid, i32, i32)> = sqlx::query_as(Self::CLAIM_JOB_SQL)
                    .bind(now)
                    .bind(locked_until)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some((document_id, attempt, claim)) = claimed else {
                    tx.commit().await?;
                    return Ok(None);
                };
                let document: $crate::store::Document = sqlx::query_as(concat!(
                    "UPDATE documents SET status = 'processing', error = NULL, updated_at = $2 \
                     WHERE id = $1 RETURNING ",
                    $crate::store::portable_ingest::document_columns!()
                ))
                .bind(document_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some($crate::store::ClaimedJob {
                    document,
                    attempt,
                    lease: $crate::store::Lease { document_id, claim },
                }))
            }

            async fn extend_lease(
                &self,
                lease: $crate::store::Lease,
                duration: ::std::time::Duration,
            ) -> Result<bool, $crate::store::StoreError> {
                let now = $crate::store::now();
                let result = sqlx::query(
                    "UPDATE ingest_jobs SET locked_until = $3, updated_at = $4 \
                     WHERE document_id = $1 AND claims = $2 AND state = 'running'",
                )
                .bind(lease.document_id)
                .bind(lease.claim)
                .bind(now + $crate::store::portable_ingest::time_delta(duration))
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn complete_job(
                &self,
                lease: $crate::store::Lease,
            ) -> Result<bool, $crate::store::StoreError> {
                let result = sqlx::query(
                    "UPDATE ingest_jobs SET state = 'done', locked_until = NULL, \
                     last_error = NULL, updated_at = $3 \
                     WHERE document_id = $1 AND claims = $2 AND state = 'running'",
                )
                .bind(lease.document_id)
                .bind(lease.claim)
                .bind($crate::store::now())
                .execute(&self.pool)
                .await?;
                Ok(result.rows_affected() > 0)
            }

            async fn fail_job(
                &self,
                lease: $crate::store::Lease,
                error: &str,
                retry_at: Option<::chrono::DateTime<::chrono::Utc>>,
            ) -> Result<bool, $crate::store::StoreError> {
                let now = $crate::store::now();
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                let (job_state, document_status, document_error) = match retry_at {
                    Some(_) => ("pending", "queued", None),
                    None => ("failed", "failed", Some(error)),
                };
                let result = sqlx::query(
                    "UPDATE ingest_jobs SET state = $3, run_after = COALESCE($4, run_after), \
                     locked_until = NULL, last_error = $5, updated_at = $6 \
                     WHERE document_id = $1 AND claims = $2 AND state = 'running'",
                )
                .bind(lease.document_id)
                .bind(lease.claim)
                .bind(job_state)
                .bind(retry_at)
                .bind(error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if result.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE documents SET status = $2, error = $3, updated_at = $4 WHERE id = $1",
                )
                .bind(lease.document_id)
                .bind(document_status)
                .bind(document_error)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn reclaim_expired_leases(
                &self,
                max_attempts: i32,
            ) -> Result<u64, $crate::store::StoreError> {
                let now = $crate::store::now();
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                // Documents first, while the jobs still say which ones expired.
                sqlx::query(
                    "UPDATE documents SET \
                     status = CASE WHEN j.attempts >= $2 THEN 'failed' ELSE 'queued' END, \
                     error = CASE WHEN j.attempts >= $2 THEN $3 ELSE NULL END, updated_at = $1 \
                     FROM ingest_jobs AS j WHERE j.document_id = documents.id \
                     AND j.state = 'running' AND j.locked_until < $1",
                )
                .bind(now)
                .bind(max_attempts)
                .bind($crate::store::portable_ingest::GAVE_UP_AFTER_CRASHES)
                .execute(&mut *tx)
                .await?;
                let reclaimed = sqlx::query(
                    "UPDATE ingest_jobs SET \
                     state = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'pending' END, \
                     last_error = CASE WHEN attempts >= $2 THEN $3 ELSE last_error END, \
                     locked_until = NULL, updated_at = $1 \
                     WHERE state = 'running' AND locked_until < $1",
                )
                .bind(now)
                .bind(max_attempts)
                .bind($crate::store::portable_ingest::GAVE_UP_AFTER_CRASHES)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(reclaimed)
            }

            async fn queue_depth(
                &self,
            ) -> Result<$crate::store::QueueDepth, $crate::store::StoreError> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT state, COUNT(*) FROM ingest_jobs GROUP BY state")
                        .fetch_all(&self.pool)
                        .await?;
                let mut depth = $crate::store::QueueDepth::default();
                for (state, count) in rows {
                    match state.as_str() {
                        "pending" => depth.pending = count,
                        "running" => depth.running = count,
                        "done" => depth.done = count,
                        "failed" => depth.failed = count,
                        other => {
                            return Err($crate::store::StoreError::Corrupt(format!(
                                "unknown ingest job state {other:?}"
                            )));
                        }
                    }
                }
                Ok(depth)
            }
        }

        #[::async_trait::async_trait]
        impl $crate::store::ChunkStore for $store {
            async fn replace_chunks(
                &self,
                set: $crate::store::ChunkSet<'_>,
            ) -> Result<bool, $crate::store::StoreError> {
                let count = i32::try_from(set.chunks.len()).map_err(|_| {
                    $crate::store::StoreError::Corrupt("more chunks than fit a count".into())
                })?;
                let dimension = i32::try_from(set.dimension).map_err(|_| {
                    $crate::store::StoreError::Corrupt("vector dimension out of range".into())
                })?;
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                // Locks the document row first: a delete racing with this commit either
                // happens before (nothing is written) or after (it removes these chunks).
                let still_there = sqlx::query(
                    "UPDATE documents SET status = 'ready', error = NULL, chunk_count = $3, \
                     embedding_model = $4, updated_at = $5 WHERE id = $1 AND user_id = $2",
                )
                .bind(set.document_id)
                .bind(set.user_id)
                .bind(count)
                .bind(set.model)
                .bind($crate::store::now())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
                if !still_there {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query("DELETE FROM chunks WHERE document_id = $1")
                    .bind(set.document_id)
                    .execute(&mut *tx)
                    .await?;
                for rows in set.chunks.chunks($crate::store::chunks::INSERT_BATCH_ROWS) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO chunks (document_id, user_id, chunk_index, text, page, \
                         char_start, char_end, heading_path, token_count, embedding_model, \
                         dimension, embedding) ",
                    );
                    insert.push_values(rows, |mut row, chunk| {
                        row.push_bind(set.document_id)
                            .push_bind(set.user_id)
                            .push_bind(chunk.chunk_index)
                            .push_bind(chunk.text.as_str())
                            .push_bind(chunk.page)
                            .push_bind(chunk.char_start)
                            .push_bind(chunk.char_end)
                            .push_bind(chunk.heading_path.as_deref())
                            .push_bind(chunk.token_count)
                            .push_bind(set.model)
                            .push_bind(dimension)
                            .push_bind(Self::embedding_value(&chunk.embedding));
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn document_chunks(
                &self,
                user_id: ::uuid::Uuid,
                document_id: ::uuid::Uuid,
            ) -> Result<Vec<$crate::store::chunks::StoredChunk>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT chunk_index, text, page, char_start, char_end, heading_path \
                     FROM chunks WHERE document_id = $1 AND user_id = $2 ORDER BY chunk_index",
                )
                .bind(document_id)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn stored_embeddings(
                &self,
            ) -> Result<Vec<$crate::store::StoredEmbedding>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT embedding_model, dimension FROM chunks \
                     GROUP BY embedding_model, dimension ORDER BY embedding_model",
                )
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

/// The failed document's error when its worker kept dying (crash, kill, lost lease).
pub(crate) const GAVE_UP_AFTER_CRASHES: &str =
    "processing was interrupted too many times (the worker stopped or crashed); reindex to retry";

/// A lease length as a chrono duration; absurd lengths saturate instead of overflowing.
pub(crate) fn time_delta(duration: std::time::Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(duration).unwrap_or(chrono::TimeDelta::days(365))
}

pub(crate) use {document_columns, impl_portable_ingest_stores};
