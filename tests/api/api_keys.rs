//! API keys over HTTP: shown once, usable as a bearer token, listed by prefix, revoked at once
//! on every replica, `last_used_at` written in batches, and invisible to other users.

use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_error, first_refusal, fresh_postgres_database, signed_up, spawn_app,
    spawn_app_with,
};

async fn create_key(app: &TestApp, token: &str, name: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/api-keys"))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap()
}

async fn new_key(app: &TestApp, token: &str, name: &str) -> Value {
    let response = create_key(app, token, name).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn list_keys(app: &TestApp, token: &str) -> reqwest::Response {
    app.authed(reqwest::Method::GET, "/api/v1/auth/api-keys", token)
        .await
}

async fn revoke(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/api/v1/auth/api-keys/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn a_key_is_shown_once_works_as_a_bearer_token_and_is_refused_once_revoked(backend: Backend) {
    let Some(app) = spawn_app_with(backend, &[]).await else {
        return;
    };
    let jwt = signed_up(&app, "ada@example.com").await;
    let created = new_key(&app, &jwt, "  laptop scripts ").await;
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("rk_") && key.len() == 67, "{key}");
    assert_eq!(created["name"], "laptop scripts");
    assert!(created["created_at"].is_string());

    let account: Value = app.me(&key).await.json().await.unwrap();
    assert_eq!(account["email"], "ada@example.com");

    let listed: Value = list_keys(&app, &key).await.json().await.unwrap();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["prefix"], &key[..11]);
    assert!(items[0].get("key").is_none());
    assert!(
        !listed.to_string().contains(&key[11..]),
        "the key is never listed"
    );

    assert_eq!(revoke(&app, &jwt, &id).await.status(), 204);
    let refused = app.me(&key).await;
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    assert_error(refused, 401, "unauthorized").await;
    assert_error(revoke(&app, &jwt, &id).await, 404, "not_found").await;
    let listed: Value = list_keys(&app, &jwt).await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn a_key_is_shown_once_works_and_is_refused_once_revoked_on_sqlite() {
    a_key_is_shown_once_works_as_a_bearer_token_and_is_refused_once_revoked(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_key_is_shown_once_works_and_is_refused_once_revoked_on_postgres() {
    a_key_is_shown_once_works_as_a_bearer_token_and_is_refused_once_revoked(Backend::Postgres)
        .await;
}

async fn last_used_at_appears_after_a_flush_not_per_request(backend: Backend) {
    let Some(app) = spawn_app_with(backend, &[]).await else {
        return;
    };
    let jwt = signed_up(&app, "ada@example.com").await;
    let key = new_key(&app, &jwt, "ci").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed: Value = list_keys(&app, &jwt).await.json().await.unwrap();
    assert_eq!(listed["items"][0]["last_used_at"], Value::Null);

    for _ in 0..3 {
        assert_eq!(app.me(&key).await.status(), 200);
    }
    // The uses wait in memory for the flusher; flushing now writes them in one batch.
    assert_eq!(app.state.accounts.flush_key_usage().await.unwrap(), 1);
    let listed: Value = list_keys(&app, &jwt).await.json().await.unwrap();
    let last_used = listed["items"][0]["last_used_at"].as_str().unwrap();
    let created = listed["items"][0]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(last_used).unwrap()
            >= chrono::DateTime::parse_from_rfc3339(created).unwrap()
    );
    assert_eq!(app.state.accounts.flush_key_usage().await.unwrap(), 0);
}

#[tokio::test]
async fn last_used_at_appears_after_a_flush_on_sqlite() {
    last_used_at_appears_after_a_flush_not_per_request(Backend::Sqlite).await;
}

#[tokio::test]
async fn last_used_at_appears_after_a_flush_on_postgres() {
    last_used_at_appears_after_a_flush_not_per_request(Backend::Postgres).await;
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_here_and_within_the_log_poll_by_another_replica() {
    let Some(database_url) = fresh_postgres_database().await else {
        return;
    };
    let shared = [("DATABASE_URL", database_url.as_str())];
    let first = spawn_app_with(Backend::Sqlite, &shared).await.unwrap();
    let second = spawn_app_with(Backend::Sqlite, &shared).await.unwrap();
    let jwt = signed_up(&first, "ada@example.com").await;
    let created = new_key(&first, &jwt, "shared").await;
    let key = created["key"].as_str().unwrap();

    // Both replicas resolve (and cache) the key.
    for _ in 0..2 {
        assert_eq!(first.me(key).await.status(), 200);
        assert_eq!(second.me(key).await.status(), 200);
    }
    assert_eq!(
        revoke(&first, &jwt, created["id"].as_str().unwrap())
            .await
            .status(),
        204
    );
    assert_error(first.me(key).await, 401, "unauthorized").await;
    assert_error(first_refusal(|| second.me(key)).await, 401, "unauthorized").await;
    // The owner's session survives the revocation of one key.
    assert_eq!(first.me(&jwt).await.status(), 200);
}

#[tokio::test]
async fn repeated_use_of_a_credential_is_served_from_the_cache() {
    let app = spawn_app().await;
    let jwt = signed_up(&app, "ada@example.com").await;
    let created = new_key(&app, &jwt, "cached").await;
    for _ in 0..3 {
        assert_eq!(app.me(created["key"].as_str().unwrap()).await.status(), 200);
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"credential_cache_lookups_total{result="hit"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn with_the_cache_off_a_revoked_key_is_refused_at_once_by_another_replica() {
    let Some(database_url) = fresh_postgres_database().await else {
        return;
    };
    let shared = [
        ("DATABASE_URL", database_url.as_str()),
        ("AUTH_CACHE_SECONDS", "0"),
    ];
    let first = spawn_app_with(Backend::Sqlite, &shared).await.unwrap();
    let second = spawn_app_with(Backend::Sqlite, &shared).await.unwrap();
    let jwt = signed_up(&first, "ada@example.com").await;
    let created = new_key(&first, &jwt, "shared").await;
    let key = created["key"].as_str().unwrap();
    assert_eq!(second.me(key).await.status(), 200);
    revoke(&first, &jwt, created["id"].as_str().unwrap()).await;
    assert_error(second.me(key).await, 401, "unauthorized").await;
}

async fn another_users_keys_are_not_found(backend: Backend) {
    let Some(app) = spawn_app_with(backend, &[]).await else {
        return;
    };
    let ada = signed_up(&app, "ada@example.com").await;
    let bob = signed_up(&app, "bob@example.com").await;
    let adas = new_key(&app, &ada, "ada's").await;
    let id = adas["id"].as_str().unwrap();

    let listed: Value = list_keys(&app, &bob).await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
    assert_error(revoke(&app, &bob, id).await, 404, "not_found").await;
    // Ada's key survived Bob's attempt.
    assert_eq!(app.me(adas["key"].as_str().unwrap()).await.status(), 200);
    let listed: Value = list_keys(&app, &ada).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn another_users_keys_are_not_found_on_sqlite() {
    another_users_keys_are_not_found(Backend::Sqlite).await;
}

#[tokio::test]
async fn another_users_keys_are_not_found_on_postgres() {
    another_users_keys_are_not_found(Backend::Postgres).await;
}

#[tokio::test]
async fn bad_key_requests_are_refused_in_the_error_shape_and_store_nothing() {
    let app = spawn_app().await;
    let jwt = signed_up(&app, "ada@example.com").await;

    let body = assert_error(create_key(&app, &jwt, "   ").await, 422, "validation_error").await;
    assert_eq!(body["error"]["details"][0]["field"], "name");
    let long = "k".repeat(101);
    assert_error(create_key(&app, &jwt, &long).await, 422, "validation_error").await;
    for control in ["a\u{0}b", "two\nlines"] {
        assert_error(
            create_key(&app, &jwt, control).await,
            422,
            "validation_error",
        )
        .await;
    }
    let malformed = app
        .client
        .post(app.url("/api/v1/auth/api-keys"))
        .bearer_auth(&jwt)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let anonymous = app
        .client
        .post(app.url("/api/v1/auth/api-keys"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let bad_id = revoke(&app, &jwt, "not-a-uuid").await;
    assert_eq!(bad_id.status(), 400);

    let listed: Value = list_keys(&app, &jwt).await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
}

#[tokio::test]
async fn a_user_cannot_hold_more_than_a_hundred_keys() {
    let app = spawn_app().await;
    let jwt = signed_up(&app, "ada@example.com").await;
    for n in 0..100 {
        assert_eq!(
            create_key(&app, &jwt, &format!("key {n}")).await.status(),
            201
        );
    }
    let refused = assert_error(
        create_key(&app, &jwt, "one too many").await,
        409,
        "too_many_api_keys",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoke one"),
        "{refused}"
    );
    let listed: Value = list_keys(&app, &jwt).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn a_well_formed_key_that_was_never_issued_is_refused() {
    let app = spawn_app().await;
    let forged = format!("rk_{}", "0".repeat(64));
    assert_error(app.me(&forged).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn key_routes_answer_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    let jwt = signed_up(&app, "ada@example.com").await;
    app.store().close().await;
    let response = list_keys(&app, &jwt).await;
    assert_error(response, 503, "database_unavailable").await;
}
