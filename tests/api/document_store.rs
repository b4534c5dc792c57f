//! Documents, the ingestion queue and chunk writes, against SQLite and PostgreSQL alike.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ragd::store::{
    ChunkSet, Created, Document, DocumentPage, DocumentStatus, NewChunk, NewDocument, NewUser,
    Store,
};
use uuid::Uuid;

crate::for_both_backends!(
    a_document_round_trips_and_is_queued,
    the_same_bytes_twice_return_the_existing_document,
    another_users_document_is_not_found,
    listing_pages_newest_first_and_filters_by_status,
    a_claimed_job_completes_once_and_replacing_chunks_never_duplicates,
    replacing_chunks_of_a_deleted_document_writes_nothing,
    failures_retry_then_fail_the_document_with_its_error,
    an_expired_lease_is_reclaimed_and_the_old_holder_is_fenced_out,
    a_job_that_keeps_dying_fails_for_good,
    reindex_queues_again_and_stale_models_are_found,
    concurrent_claims_never_share_a_job,
);

pub async fn user(store: &Arc<dyn Store>, email: &str) -> Uuid {
    store
        .create_user(NewUser {
            email: email.into(),
            password_hash: "$argon2id$v=19$fake".into(),
            role: "user".into(),
        })
        .await
        .unwrap()
        .id
}

fn new_document(user_id: Uuid, sha256: &str) -> NewDocument {
    let id = Uuid::now_v7();
    NewDocument {
        id,
        user_id,
        filename: "notes.txt".into(),
        content_type: "text/plain".into(),
        size_bytes: 42,
        sha256: sha256.into(),
        metadata: serde_json::json!({"source": "test"}),
        storage_path: id.to_string(),
    }
}

async fn create(store: &Arc<dyn Store>, user_id: Uuid, sha256: &str) -> Document {
    match store
        .create_document(new_document(user_id, sha256))
        .await
        .unwrap()
    {
        Created::New(document) => document,
        Created::Existing(document) => panic!("unexpected duplicate {}", document.id),
    }
}

fn chunks(count: i32) -> Vec<NewChunk> {
    (0..count)
        .map(|i| NewChunk {
            chunk_index: i,
            text: format!("chunk number {i}"),
            page: Some(1),
            char_start: i * 10,
            char_end: i * 10 + 9,
            heading_path: Some("Intro".into()),
            token_count: 3,
            embedding: vec![0.5, -0.25, f32::from(u8::try_from(i).unwrap())],
        })
        .collect()
}

fn chunk_set<'a>(document: &Document, chunks: &'a [NewChunk]) -> ChunkSet<'a> {
    ChunkSet {
        user_id: document.user_id,
        document_id: document.id,
        model: "local/test",
        dimension: 3,
        chunks,
    }
}

const LEASE: Duration = Duration::from_secs(60);

async fn a_document_round_trips_and_is_queued(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let created = create(&store, ada, "aa").await;
    assert_eq!(created.status, DocumentStatus::Queued);
    let read = store.document(ada, created.id).await.unwrap().unwrap();
    assert_eq!(read, created);
    assert_eq!(read.metadata["source"], "test");
    assert_eq!(store.queue_depth().await.unwrap().pending, 1);
}

async fn the_same_bytes_twice_return_the_existing_document(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let bob = user(&store, "bob@example.com").await;
    let first = create(&store, ada, "same").await;
    match store
        .create_document(new_document(ada, "same"))
        .await
        .unwrap()
    {
        Created::Existing(existing) => assert_eq!(existing.id, first.id),
        Created::New(_) => panic!("a duplicate was created"),
    }
    // Another user's identical bytes are their own document.
    create(&store, bob, "same").await;
    assert_eq!(store.queue_depth().await.unwrap().pending, 2);
}

async fn another_users_document_is_not_found(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let bob = user(&store, "bob@example.com").await;
    let document = create(&store, ada, "aa").await;
    assert!(store.document(bob, document.id).await.unwrap().is_none());
    assert!(
        store
            .delete_document(bob, document.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .reindex_document(bob, document.id)
            .await
            .unwrap()
            .is_none()
    );
    let page = DocumentPage {
        limit: 10,
        before: None,
        status: None,
    };
    assert!(store.list_documents(bob, page).await.unwrap().is_empty());
    assert!(store.document(ada, document.id).await.unwrap().is_some());
}

async fn listing_pages_newest_first_and_filters_by_status(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&store, ada, &format!("sha{i}")).await.id);
    }
    ids.reverse();
    let first = store
        .list_documents(
            ada,
            DocumentPage {
                limit: 2,
                before: None,
                status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.iter().map(|d| d.id).collect::<Vec<_>>(), ids[..2]);
    let second = store
        .list_documents(
            ada,
            DocumentPage {
                limit: 10,
                before: Some(first[1].id),
                status: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(second.iter().map(|d| d.id).collect::<Vec<_>>(), ids[2..]);

    let job = store.claim_job(LEASE).await.unwrap().unwrap();
    let processing = store
        .list_documents(
            ada,
            DocumentPage {
                limit: 10,
                before: None,
                status: Some(DocumentStatus::Processing),
            },
        )
        .await
        .unwrap();
    assert_eq!(processing.len(), 1);
    assert_eq!(processing[0].id, job.document.id);
}

async fn a_claimed_job_completes_once_and_replacing_chunks_never_duplicates(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let document = create(&store, ada, "aa").await;
    let job = store.claim_job(LEASE).await.unwrap().unwrap();
    assert_eq!(job.document.id, document.id);
    assert_eq!(job.document.status, DocumentStatus::Processing);
    assert_eq!(job.attempt, 1);
    assert!(store.claim_job(LEASE).await.unwrap().is_none(), "one job");

    let chunks = chunks(7);
    assert!(
        store
            .replace_chunks(chunk_set(&document, &chunks))
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_chunks(chunk_set(&document, &chunks[..4]))
            .await
            .unwrap()
    );
    assert!(store.complete_job(job.lease).await.unwrap());
    assert!(!store.complete_job(job.lease).await.unwrap(), "only once");

    let ready = store.document(ada, document.id).await.unwrap().unwrap();
    assert_eq!(ready.status, DocumentStatus::Ready);
    assert_eq!(ready.chunk_count, 4);
    assert_eq!(ready.embedding_model.as_deref(), Some("local/test"));
    let depth = store.queue_depth().await.unwrap();
    assert_eq!((depth.pending, depth.running, depth.done), (0, 0, 1));
    let stored = store.stored_embeddings().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].dimension, 3);

    store
        .delete_document(ada, document.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store.stored_embeddings().await.unwrap().is_empty(),
        "chunks go"
    );
    assert_eq!(store.queue_depth().await.unwrap().done, 0, "the job goes");
}

async fn replacing_chunks_of_a_deleted_document_writes_nothing(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let document = create(&store, ada, "aa").await;
    let job = store.claim_job(LEASE).await.unwrap().unwrap();
    store
        .delete_document(ada, document.id)
        .await
        .unwrap()
        .unwrap();
    let chunks = chunks(3);
    assert!(
        !store
            .replace_chunks(chunk_set(&document, &chunks))
            .await
            .unwrap()
    );
    assert!(store.stored_embeddings().await.unwrap().is_empty());
    assert!(!store.complete_job(job.lease).await.unwrap());
}

async fn failures_retry_then_fail_the_document_with_its_error(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let document = create(&store, ada, "aa").await;
    let first = store.claim_job(LEASE).await.unwrap().unwrap();
    let later = ragd::store::now() + chrono::TimeDelta::hours(1);
    assert!(
        store
            .fail_job(first.lease, "provider down", Some(later))
            .await
            .unwrap()
    );
    let queued = store.document(ada, document.id).await.unwrap().unwrap();
    assert_eq!(queued.status, DocumentStatus::Queued);
    assert!(
        store.claim_job(LEASE).await.unwrap().is_none(),
        "not before its backoff"
    );

    let now = ragd::store::now();
    assert!(
        !store
            .fail_job(first.lease, "again", Some(now))
            .await
            .unwrap(),
        "a lease already given back holds nothing"
    );
    // Reindex makes it due at once; the next attempt gives up for good.
    store
        .reindex_document(ada, document.id)
        .await
        .unwrap()
        .unwrap();
    let second = store.claim_job(LEASE).await.unwrap().unwrap();
    assert!(
        store
            .fail_job(second.lease, "malformed PDF file: bad xref", None)
            .await
            .unwrap()
    );
    let failed = store.document(ada, document.id).await.unwrap().unwrap();
    assert_eq!(failed.status, DocumentStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("malformed PDF file: bad xref")
    );
    assert_eq!(store.queue_depth().await.unwrap().failed, 1);
}

async fn an_expired_lease_is_reclaimed_and_the_old_holder_is_fenced_out(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let document = create(&store, ada, "aa").await;
    let dead = store.claim_job(Duration::ZERO).await.unwrap().unwrap();
    tokio::task::yield_now().await;
    assert_eq!(store.reclaim_expired_leases(5).await.unwrap(), 1);
    let requeued = store.document(ada, document.id).await.unwrap().unwrap();
    assert_eq!(requeued.status, DocumentStatus::Queued);

    let alive = store.claim_job(LEASE).await.unwrap().unwrap();
    assert_eq!(alive.attempt, 2);
    assert!(!store.extend_lease(dead.lease, LEASE).await.unwrap());
    assert!(!store.complete_job(dead.lease).await.unwrap());
    assert!(!store.fail_job(dead.lease, "late", None).await.unwrap());
    assert!(store.extend_lease(alive.lease, LEASE).await.unwrap());
    assert_eq!(store.reclaim_expired_leases(5).await.unwrap(), 0);
    assert!(store.complete_job(alive.lease).await.unwrap());
}

async fn a_job_that_keeps_dying_fails_for_good(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let document = create(&store, ada, "aa").await;
    store.claim_job(Duration::ZERO).await.unwrap().unwrap();
    tokio::task::yield_now().await;
    assert_eq!(store.reclaim_expired_leases(1).await.unwrap(), 1);
    let failed = store.document(ada, document.id).await.unwrap().unwrap();
    assert_eq!(failed.status, DocumentStatus::Failed);
    assert!(failed.error.unwrap().contains("interrupted"));
    assert!(store.claim_job(LEASE).await.unwrap().is_none());
}

async fn reindex_queues_again_and_stale_models_are_found(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    let document = create(&store, ada, "aa").await;
    let job = store.claim_job(LEASE).await.unwrap().unwrap();
    let chunks = chunks(2);
    store
        .replace_chunks(chunk_set(&document, &chunks))
        .await
        .unwrap();
    store.complete_job(job.lease).await.unwrap();

    assert_eq!(
        store.reindex_stale_documents("local/test").await.unwrap(),
        0
    );
    assert_eq!(
        store.reindex_stale_documents("other-model").await.unwrap(),
        1
    );
    let again = store.claim_job(LEASE).await.unwrap().unwrap();
    assert_eq!(again.document.id, document.id);
    assert_eq!(again.attempt, 1, "a reindex starts with fresh attempts");
    // The old chunks stay until the new ones replace them.
    assert_eq!(again.document.chunk_count, 2);

    let reindexed = store
        .reindex_document(ada, document.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reindexed.status, DocumentStatus::Queued);
    assert!(
        !store.complete_job(again.lease).await.unwrap(),
        "a reindex during processing runs the job again"
    );
}

async fn concurrent_claims_never_share_a_job(store: Arc<dyn Store>) {
    let ada = user(&store, "ada@example.com").await;
    for i in 0..20 {
        create(&store, ada, &format!("sha{i}")).await;
    }
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                while let Some(job) = store.claim_job(LEASE).await.unwrap() {
                    claimed.push(job.document.id);
                }
                claimed
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 20, "every job claimed");
    assert_eq!(distinct.len(), 20, "no job claimed twice");
}
