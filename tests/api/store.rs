//! The storage suite: one set of tests, run against SQLite and PostgreSQL alike.

use std::sync::Arc;

use ragd::store::revocations::now_micros;
use ragd::store::{NewApiKey, NewUser, Store, StoreError, UsageEvent};

crate::for_both_backends!(
    users_round_trip,
    a_taken_email_is_a_conflict,
    deleting_a_user_reports_whether_it_existed,
    revoking_keys_and_deleting_users_is_logged_for_other_replicas,
    a_user_holds_at_most_the_limit_of_keys,
    keys_created_at_once_stay_within_the_limit,
    usage_batches_larger_than_one_insert_are_written_whole,
);

/// A stored account for `email`.
async fn user(store: &dyn Store, email: &str) -> ragd::store::User {
    store.create_user(new_user(email)).await.unwrap()
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "$argon2id$v=19$fake".into(),
        role: "user".into(),
    }
}

async fn users_round_trip(store: Arc<dyn Store>) {
    let created = user(&*store, "ada@example.com").await;
    let by_email = store
        .user_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let by_id = store.user_by_id(created.id).await.unwrap().unwrap();
    assert_eq!(by_email.id, created.id);
    assert_eq!(by_id.email, "ada@example.com");
    assert_eq!(by_id.created_at, created.created_at);
    assert_eq!(by_id.role, "user");
    assert!(
        store
            .user_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    user(&*store, "bob@example.com").await;
    let listed: Vec<_> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(listed, ["ada@example.com", "bob@example.com"]);
}

async fn a_taken_email_is_a_conflict(store: Arc<dyn Store>) {
    user(&*store, "ada@example.com").await;
    let err = store
        .create_user(new_user("ada@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

async fn deleting_a_user_reports_whether_it_existed(store: Arc<dyn Store>) {
    let user = user(&*store, "ada@example.com").await;
    assert!(store.delete_user(user.id).await.unwrap());
    assert!(!store.delete_user(user.id).await.unwrap());
    assert!(store.user_by_id(user.id).await.unwrap().is_none());
}

async fn revoking_keys_and_deleting_users_is_logged_for_other_replicas(store: Arc<dyn Store>) {
    let started = now_micros();
    let ada = user(&*store, "ada@example.com").await;
    let bob = user(&*store, "bob@example.com").await;
    let key = store
        .create_api_key(
            ada.id,
            NewApiKey {
                name: "ci".into(),
                prefix: "rk_0123".into(),
                key_hash: "ab".repeat(32),
            },
            10,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(store.revocations_since(started).await.unwrap().is_empty());

    // Nothing revoked, nothing logged: another user's key, a missing user.
    assert!(!store.delete_api_key(bob.id, key.id).await.unwrap());
    assert!(!store.delete_user(uuid::Uuid::new_v4()).await.unwrap());
    assert!(store.revocations_since(started).await.unwrap().is_empty());

    assert!(store.delete_api_key(ada.id, key.id).await.unwrap());
    assert!(store.delete_user(bob.id).await.unwrap());
    let log = store.revocations_since(started).await.unwrap();
    let users: Vec<_> = log.iter().map(|row| row.user_id).collect();
    assert_eq!(users, [ada.id, bob.id]);
    assert!(log[0].seq < log[1].seq);
    assert!(log.iter().all(|row| row.revoked_at >= started));
    // Readers ask for a window; older rows are not returned.
    assert!(
        store
            .revocations_since(now_micros() + 1_000_000)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_user_holds_at_most_the_limit_of_keys(store: Arc<dyn Store>) {
    let ada = user(&*store, "ada@example.com").await;
    let bob = user(&*store, "bob@example.com").await;
    let key = |n: u32| NewApiKey {
        name: format!("key {n}"),
        prefix: "rk_0123".into(),
        key_hash: format!("{n:064x}"),
    };
    for n in 0..3 {
        assert!(
            store
                .create_api_key(ada.id, key(n), 3)
                .await
                .unwrap()
                .is_some()
        );
    }
    assert!(
        store
            .create_api_key(ada.id, key(3), 3)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_api_keys(ada.id).await.unwrap().len(), 3);
    // Another user's keys do not count; revoking one makes room.
    assert!(
        store
            .create_api_key(bob.id, key(4), 3)
            .await
            .unwrap()
            .is_some()
    );
    let first = store.list_api_keys(ada.id).await.unwrap()[0].id;
    assert!(store.delete_api_key(ada.id, first).await.unwrap());
    assert!(
        store
            .create_api_key(ada.id, key(5), 3)
            .await
            .unwrap()
            .is_some()
    );
}

async fn keys_created_at_once_stay_within_the_limit(store: Arc<dyn Store>) {
    // Open the pool's connections first, so that the creations below do run at once.
    let warm_up = (0..20).map(|_| store.user_by_email("nobody@example.com"));
    futures::future::join_all(warm_up).await;
    // A race shows only now and then: many users, each sent many creations at once.
    for person in 0..10 {
        let owner = user(&*store, &format!("user{person}@example.com")).await;
        let creations = (0..20_u32).map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = NewApiKey {
                    name: format!("key {n}"),
                    prefix: "rk_0123".into(),
                    key_hash: format!("{person:032x}{n:032x}"),
                };
                store.create_api_key(owner.id, key, 5).await.unwrap()
            })
        });
        futures::future::join_all(creations).await;
        assert_eq!(store.list_api_keys(owner.id).await.unwrap().len(), 5);
    }
}

async fn usage_batches_larger_than_one_insert_are_written_whole(store: Arc<dyn Store>) {
    let ada = user(&*store, "ada@example.com").await;
    let events: Vec<UsageEvent> = (0..1_201)
        .map(|n| UsageEvent {
            id: uuid::Uuid::now_v7(),
            user_id: ada.id,
            model: "gpt-4o-mini".into(),
            provider: "openai".into(),
            prompt_tokens: n,
            completion_tokens: 2 * n,
            latency_ms: 10,
            ttft_ms: (n % 2 == 0).then_some(5),
            outcome: "success".into(),
            created_at: ragd::store::now(),
        })
        .collect();
    store.record_usage(&events).await.unwrap();
    let stored = store.list_usage(ada.id, 2_000).await.unwrap();
    assert_eq!(stored.len(), events.len());
    let mut stored_ids: Vec<_> = stored.iter().map(|event| event.id).collect();
    stored_ids.sort();
    let written: Vec<_> = events.iter().map(|event| event.id).collect();
    assert_eq!(stored_ids, written);
    let last = stored
        .iter()
        .find(|event| event.id == events[1_200].id)
        .unwrap();
    assert_eq!(last, &events[1_200]);
}
