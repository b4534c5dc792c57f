//! The storage suite: one set of tests, run against SQLite and PostgreSQL alike.

use std::sync::Arc;

use ragd::store::{NewUser, Store, StoreError};

crate::for_both_backends!(
    users_round_trip,
    a_taken_email_is_a_conflict,
    deleting_a_user_reports_whether_it_existed,
);

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "$argon2id$v=19$fake".into(),
        role: "user".into(),
    }
}

async fn users_round_trip(store: Arc<dyn Store>) {
    let created = store
        .create_user(new_user("ada@example.com"))
        .await
        .unwrap();
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
    store
        .create_user(new_user("bob@example.com"))
        .await
        .unwrap();
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
    store
        .create_user(new_user("ada@example.com"))
        .await
        .unwrap();
    let err = store
        .create_user(new_user("ada@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

async fn deleting_a_user_reports_whether_it_existed(store: Arc<dyn Store>) {
    let user = store
        .create_user(new_user("ada@example.com"))
        .await
        .unwrap();
    assert!(store.delete_user(user.id).await.unwrap());
    assert!(!store.delete_user(user.id).await.unwrap());
    assert!(store.user_by_id(user.id).await.unwrap().is_none());
}
