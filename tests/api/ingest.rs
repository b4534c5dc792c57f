//! Documents end to end below HTTP: uploads through the documents service, processed by the
//! real workers, against real SQLite/PostgreSQL and a real mock embedding server.

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use ragd::app::App;
use ragd::services::ingest::{UploadError, Uploaded};
use ragd::store::{Document, DocumentStatus};
use uuid::Uuid;

use crate::document_store::user;
use crate::embedding_mock::{self, EmbeddingMock};
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with, test_settings};

const SENTENCE: &str = "The lighthouse keeper counted seventeen herons at dawn.";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

async fn new_user(app: &TestApp, email: &str) -> Uuid {
    user(&app.store(), email).await
}

/// The bytes as a body arriving in 4 KiB pieces, like a network stream.
fn body(bytes: &[u8]) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Unpin {
    let pieces: Vec<Result<Bytes, Infallible>> = bytes
        .chunks(4096)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    futures::stream::iter(pieces)
}

async fn upload(
    app: &TestApp,
    user: Uuid,
    name: &str,
    bytes: &[u8],
) -> Result<Uploaded, UploadError> {
    let ingest = &app.state.ingest;
    let file = ingest.receive(name, body(bytes)).await?;
    ingest.register(user, file, serde_json::json!({})).await
}

/// Waits (bounded) until the background workers settle the document.
async fn settled(app: &TestApp, user: Uuid, id: Uuid) -> Document {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let document = app.store().document(user, id).await.unwrap().unwrap();
        if matches!(
            document.status,
            DocumentStatus::Ready | DocumentStatus::Failed
        ) {
            return document;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {:?}",
            document.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stored_files(app: &TestApp) -> Vec<String> {
    match std::fs::read_dir(app.state.settings.uploads_dir()) {
        Ok(entries) => entries
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn mock_app(
    backend: Backend,
    mock: &EmbeddingMock,
    extra: &[(&str, &str)],
) -> Option<TestApp> {
    let settings = mock.settings();
    let mut overrides: Vec<(&str, &str)> = settings
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    overrides.extend_from_slice(extra);
    spawn_app_with(backend, &overrides).await
}

mod sqlite {
    use super::*;

    #[tokio::test]
    async fn every_format_reaches_ready_with_the_sentence_in_a_chunk() {
        super::every_format_reaches_ready(spawn_app().await).await;
    }
}

mod postgres {
    use super::*;

    #[tokio::test]
    async fn every_format_reaches_ready_with_the_sentence_in_a_chunk() {
        if let Some(app) = spawn_app_with(Backend::Postgres, &[]).await {
            super::every_format_reaches_ready(app).await;
        }
    }

    #[tokio::test]
    async fn a_second_ingest_of_the_same_text_makes_no_upstream_call() {
        let mock = EmbeddingMock::start().await;
        if let Some(app) = mock_app(Backend::Postgres, &mock, &[]).await {
            super::second_ingest_is_served_from_cache(app, &mock).await;
        }
    }
}

async fn every_format_reaches_ready(app: TestApp) {
    let ada = new_user(&app, "ada@example.com").await;
    for name in [
        "sample.txt",
        "sample.md",
        "sample.html",
        "sample.pdf",
        "sample.docx",
    ] {
        let uploaded = upload(&app, ada, name, &fixture(name)).await.unwrap();
        assert!(uploaded.created);
        assert_eq!(uploaded.document.status, DocumentStatus::Queued);
        let document = settled(&app, ada, uploaded.document.id).await;
        assert_eq!(
            document.status,
            DocumentStatus::Ready,
            "{name}: {:?}",
            document.error
        );
        assert!(document.chunk_count >= 1);
        let chunks = app.store().document_chunks(ada, document.id).await.unwrap();
        assert_eq!(chunks.len(), usize::try_from(document.chunk_count).unwrap());
        assert!(
            chunks.iter().any(|chunk| chunk.text.contains(SENTENCE)),
            "{name}: {chunks:?}"
        );
        if name == "sample.pdf" {
            let page = chunks
                .iter()
                .find(|c| c.text.contains(SENTENCE))
                .unwrap()
                .page;
            assert!(page.is_some(), "PDF chunks carry their page");
        }
        if name == "sample.html" {
            assert!(
                chunks.iter().all(|c| !c.text.contains("secret")),
                "scripts dropped"
            );
        }
    }
}

#[tokio::test]
async fn hostile_files_fail_their_document_with_a_clear_error() {
    let app = spawn_app().await;
    let ada = new_user(&app, "ada@example.com").await;
    for (name, expected) in [
        ("malformed.pdf", "malformed"),
        ("encrypted.pdf", "encrypted"),
        ("zip-bomb.docx", "too large"),
    ] {
        let uploaded = upload(&app, ada, name, &fixture(name)).await.unwrap();
        let document = settled(&app, ada, uploaded.document.id).await;
        assert_eq!(document.status, DocumentStatus::Failed, "{name}");
        let error = document.error.unwrap();
        assert!(error.contains(expected), "{name}: {error}");
        assert_eq!(document.chunk_count, 0);
    }
    // The workers survived: a good file still goes through.
    let good = upload(&app, ada, "sample.txt", &fixture("sample.txt"))
        .await
        .unwrap();
    assert_eq!(
        settled(&app, ada, good.document.id).await.status,
        DocumentStatus::Ready
    );
}

#[tokio::test]
async fn an_oversize_upload_is_refused_and_its_partial_file_removed() {
    let app = spawn_app_with(Backend::Sqlite, &[("MAX_UPLOAD_MB", "1")])
        .await
        .unwrap();
    let ada = new_user(&app, "ada@example.com").await;
    let big = "All work and no play.\n".repeat(100_000);
    let err = upload(&app, ada, "big.txt", big.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::TooLarge { .. }), "{err:?}");
    assert!(stored_files(&app).is_empty(), "{:?}", stored_files(&app));
}

#[tokio::test]
async fn an_unsupported_type_is_refused_without_keeping_the_file() {
    let app = spawn_app().await;
    let ada = new_user(&app, "ada@example.com").await;
    let mut binary = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
    binary.extend(std::iter::repeat_n(0u8, 20_000));
    let err = upload(&app, ada, "setup.exe", &binary).await.unwrap_err();
    assert!(matches!(err, UploadError::Unsupported(_)), "{err:?}");
    assert!(stored_files(&app).is_empty());
}

#[tokio::test]
async fn path_traversal_filenames_never_reach_the_filesystem() {
    let app = spawn_app().await;
    let ada = new_user(&app, "ada@example.com").await;
    let uploaded = upload(
        &app,
        ada,
        "../../etc/\u{0}passwd.txt",
        b"hello there, plain text",
    )
    .await
    .unwrap();
    assert_eq!(uploaded.document.filename, "passwd.txt");
    let files = stored_files(&app);
    assert_eq!(files, [uploaded.document.id.to_string()]);
    assert_eq!(
        uploaded.document.storage_path,
        uploaded.document.id.to_string()
    );
}

#[tokio::test]
async fn a_duplicate_upload_returns_the_existing_document() {
    let app = spawn_app().await;
    let ada = new_user(&app, "ada@example.com").await;
    let first = upload(&app, ada, "a.txt", &fixture("sample.txt"))
        .await
        .unwrap();
    let second = upload(&app, ada, "b.txt", &fixture("sample.txt"))
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.document.id, first.document.id);
    assert_eq!(stored_files(&app).len(), 1, "the second copy is not kept");
    // One reading: between three, a worker may move the job from pending to running.
    let depth = app.store().queue_depth().await.unwrap();
    assert_eq!(depth.pending + depth.running + depth.done, 1);
}

#[tokio::test]
async fn another_user_never_sees_the_document() {
    let app = spawn_app().await;
    let ada = new_user(&app, "ada@example.com").await;
    let bob = new_user(&app, "bob@example.com").await;
    let uploaded = upload(&app, ada, "a.txt", &fixture("sample.txt"))
        .await
        .unwrap();
    let id = uploaded.document.id;
    let ingest = &app.state.ingest;
    assert!(ingest.get(bob, id).await.unwrap().is_none());
    assert!(ingest.delete(bob, id).await.unwrap().is_none());
    assert!(ingest.reindex(bob, id).await.unwrap().is_none());
    settled(&app, ada, id).await;
    assert!(
        app.store()
            .document_chunks(bob, id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(ingest.get(ada, id).await.unwrap().is_some());
}

#[tokio::test]
async fn deleting_during_processing_stores_nothing_and_removes_the_file() {
    let mock = EmbeddingMock::gated().await;
    let app = mock_app(Backend::Sqlite, &mock, &[("VECTOR_DIMENSION", "8")])
        .await
        .unwrap();
    let ada = new_user(&app, "ada@example.com").await;
    let uploaded = upload(&app, ada, "a.txt", &fixture("sample.txt"))
        .await
        .unwrap();
    let id = uploaded.document.id;
    // The worker is now held inside the embedding call.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while mock.calls().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never called"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deleted = app.state.ingest.delete(ada, id).await.unwrap().unwrap();
    assert_eq!(deleted.status, DocumentStatus::Processing);
    mock.release();
    // Give the worker its chance to (wrongly) store; then nothing may be there.
    let depth_deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.store().queue_depth().await.unwrap().running > 0 {
        assert!(tokio::time::Instant::now() < depth_deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(app.store().document(ada, id).await.unwrap().is_none());
    assert!(app.store().stored_embeddings().await.unwrap().is_empty());
    assert!(stored_files(&app).is_empty());
}

#[tokio::test]
async fn a_job_whose_worker_died_completes_exactly_once_after_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = test_settings(
        Backend::Sqlite,
        &data_dir,
        &[("CHUNK_TOKENS", "32"), ("CHUNK_OVERLAP", "0")],
    )
    .await
    .unwrap();
    // Built but not serving: no workers yet.
    let app = App::build(settings).await.unwrap();
    let state = app.state().clone();
    let ada = user(&state.store, "ada@example.com").await;
    let text = format!("{SENTENCE} ").repeat(40);
    let file = state
        .ingest
        .receive("long.txt", body(text.as_bytes()))
        .await
        .unwrap();
    let uploaded = state
        .ingest
        .register(ada, file, serde_json::json!({}))
        .await
        .unwrap();
    // A worker claims the job and dies: its lease runs out unrenewed.
    let dead = state
        .store
        .claim_job(Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.document.id, uploaded.document.id);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve_until(async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let document = loop {
        let document = state
            .store
            .document(ada, uploaded.document.id)
            .await
            .unwrap()
            .unwrap();
        if document.status == DocumentStatus::Ready {
            break document;
        }
        assert!(tokio::time::Instant::now() < deadline, "{document:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The worker marks the job done just after the document turns ready.
    let depth = loop {
        let depth = state.store.queue_depth().await.unwrap();
        if depth.running == 0 || tokio::time::Instant::now() >= deadline {
            break depth;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((depth.pending, depth.running, depth.done), (0, 0, 1));
    assert!(
        !state.store.complete_job(dead.lease).await.unwrap(),
        "the dead worker is fenced out"
    );

    // A clean run of the same text, for another user, gives the same chunks.
    let bob = user(&state.store, "bob@example.com").await;
    let file = state
        .ingest
        .receive("long.txt", body(text.as_bytes()))
        .await
        .unwrap();
    let clean = state
        .ingest
        .register(bob, file, serde_json::json!({}))
        .await
        .unwrap();
    let clean = loop {
        let d = state
            .store
            .document(bob, clean.document.id)
            .await
            .unwrap()
            .unwrap();
        if d.status == DocumentStatus::Ready {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(document.chunk_count > 1);
    assert_eq!(document.chunk_count, clean.chunk_count);
    let stored = state.store.document_chunks(ada, document.id).await.unwrap();
    assert_eq!(
        stored.len(),
        usize::try_from(clean.chunk_count).unwrap(),
        "no duplicates"
    );
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn chunks_are_embedded_in_batches_of_the_configured_size() {
    let mock = EmbeddingMock::start().await;
    let app = mock_app(
        Backend::Sqlite,
        &mock,
        &[
            ("EMBEDDING_BATCH_SIZE", "4"),
            ("CHUNK_TOKENS", "32"),
            ("CHUNK_OVERLAP", "0"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        mock.calls().len(),
        1,
        "one start-up probe for the dimension"
    );
    let ada = new_user(&app, "ada@example.com").await;
    let text: String = (0..60)
        .map(|i| format!("Sentence number {i} is about herons. "))
        .collect();
    let uploaded = upload(&app, ada, "long.txt", text.as_bytes())
        .await
        .unwrap();
    let document = settled(&app, ada, uploaded.document.id).await;
    assert_eq!(
        document.status,
        DocumentStatus::Ready,
        "{:?}",
        document.error
    );
    let chunks = usize::try_from(document.chunk_count).unwrap();
    assert!(chunks > 4, "{chunks} chunks");
    let calls = &mock.calls()[1..];
    assert!(calls.iter().all(|inputs| inputs.len() <= 4), "{calls:?}");
    assert_eq!(calls.len(), chunks.div_ceil(4));
    assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), chunks);
}

#[tokio::test]
async fn a_second_ingest_of_the_same_text_makes_no_upstream_call() {
    let mock = EmbeddingMock::start().await;
    let app = mock_app(Backend::Sqlite, &mock, &[]).await.unwrap();
    second_ingest_is_served_from_cache(app, &mock).await;
}

async fn second_ingest_is_served_from_cache(app: TestApp, mock: &EmbeddingMock) {
    let ada = new_user(&app, "ada@example.com").await;
    let bob = new_user(&app, "bob@example.com").await;
    let first = upload(&app, ada, "a.txt", &fixture("sample.md"))
        .await
        .unwrap();
    assert_eq!(
        settled(&app, ada, first.document.id).await.status,
        DocumentStatus::Ready
    );
    let calls = mock.calls().len();
    let second = upload(&app, bob, "b.md", &fixture("sample.md"))
        .await
        .unwrap();
    assert_eq!(
        settled(&app, bob, second.document.id).await.status,
        DocumentStatus::Ready
    );
    assert_eq!(mock.calls().len(), calls, "served from the cache");
}

#[tokio::test]
async fn concurrent_callers_each_get_their_own_vectors_in_order() {
    let mock = EmbeddingMock::start().await;
    let app = mock_app(Backend::Sqlite, &mock, &[("VECTOR_DIMENSION", "8")])
        .await
        .unwrap();
    let embedder = app.state.embedder.clone();
    let callers: Vec<_> = (0..12)
        .map(|caller| {
            let embedder = embedder.clone();
            tokio::spawn(async move {
                let texts: Vec<String> = (0..3)
                    .map(|i| format!("caller {caller} text {i}"))
                    .collect();
                (texts.clone(), embedder.embed(&texts).await.unwrap())
            })
        })
        .collect();
    for caller in callers {
        let (texts, vectors) = caller.await.unwrap();
        let expected: Vec<Vec<f32>> = texts
            .iter()
            .map(|t| embedding_mock::vector_for(t))
            .collect();
        assert_eq!(vectors, expected);
    }
    let calls = mock.calls();
    assert_eq!(
        calls.iter().map(Vec::len).sum::<usize>(),
        36,
        "each text embedded once"
    );
    assert!(calls.len() <= 12, "never more calls than callers");
    // Partial cache hit: only the new text goes upstream.
    let before = mock.calls().len();
    let mixed = vec!["caller 0 text 0".to_owned(), "brand new".to_owned()];
    embedder.embed(&mixed).await.unwrap();
    let calls = mock.calls();
    assert_eq!(calls.len(), before + 1);
    assert_eq!(calls.last().unwrap(), &vec!["brand new".to_owned()]);
}

#[tokio::test]
async fn start_up_refuses_a_dimension_other_than_the_stored_vectors() {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = test_settings(Backend::Sqlite, &data_dir, &[])
        .await
        .unwrap();
    let app = App::build(settings).await.unwrap();
    let state = app.state().clone();
    let ada = user(&state.store, "ada@example.com").await;
    let file = state
        .ingest
        .receive("a.txt", body(&fixture("sample.txt")))
        .await
        .unwrap();
    let uploaded = state
        .ingest
        .register(ada, file, serde_json::json!({}))
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve_until(async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while state
        .store
        .document(ada, uploaded.document.id)
        .await
        .unwrap()
        .unwrap()
        .status
        != DocumentStatus::Ready
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    drop(state);

    let settings = test_settings(Backend::Sqlite, &data_dir, &[("VECTOR_DIMENSION", "128")])
        .await
        .unwrap();
    let err = App::build(settings)
        .await
        .err()
        .expect("start-up refused")
        .to_string();
    assert!(err.contains("384") && err.contains("128"), "{err}");
}
