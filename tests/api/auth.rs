//! Accounts and access tokens over HTTP: registration, login in both encodings, `/auth/me`,
//! and every way a forged or stale token is refused.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, signed_up, spawn_app, spawn_app_with};

const SECRET: &str = "test-secret-key-that-is-long-enough-for-hs256-0123456789";

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/register"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn registers_logs_in_and_reads_its_account(backend: Backend) {
    let Some(app) = spawn_app_with(backend, &[]).await else {
        return;
    };
    let response = register(
        &app,
        json!({"email": " Ada@Example.COM ", "password": "correct horse battery"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["email"], "ada@example.com");
    assert_eq!(created["role"], "user");
    assert!(created.get("password_hash").is_none());

    let token: Value = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"email": "ADA@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["token_type"], "bearer");
    assert!(token["expires_in"].as_u64().unwrap() > 0);

    let response = app.me(token["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 200);
    let account: Value = response.json().await.unwrap();
    assert_eq!(account["id"], created["id"]);
    assert_eq!(account["created_at"], created["created_at"]);
}

#[tokio::test]
async fn registers_logs_in_and_reads_its_account_on_sqlite() {
    registers_logs_in_and_reads_its_account(Backend::Sqlite).await;
}

#[tokio::test]
async fn registers_logs_in_and_reads_its_account_on_postgres() {
    registers_logs_in_and_reads_its_account(Backend::Postgres).await;
}

#[tokio::test]
async fn the_oauth2_password_form_logs_in_too() {
    let app = spawn_app().await;
    signed_up(&app, "form@example.com").await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=form%40example.com&password=correct+horse+battery")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let token: Value = response.json().await.unwrap();
    assert_eq!(
        app.me(token["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_json_login_is_read_whatever_the_case_of_its_type_and_a_huge_form_is_413() {
    let app = spawn_app().await;
    signed_up(&app, "case@example.com").await;
    let login = |content_type: &'static str, body: String| {
        app.client
            .post(app.url("/api/v1/auth/token"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let json = json!({"email": "case@example.com", "password": "correct horse battery"});
    let upper = login("Application/JSON", json.to_string()).await.unwrap();
    assert_eq!(upper.status(), 200);

    let huge = format!(
        "username=case%40example.com&password={}",
        "x".repeat(3 << 20)
    );
    let refused = login("application/x-www-form-urlencoded", huge)
        .await
        .unwrap();
    assert_error(refused, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_taken_email_is_409_whatever_its_case() {
    let app = spawn_app().await;
    signed_up(&app, "taken@example.com").await;
    let response = register(
        &app,
        json!({"email": "TAKEN@example.com", "password": "another good password"}),
    )
    .await;
    assert_error(response, 409, "email_taken").await;
}

#[tokio::test]
async fn invalid_registrations_name_each_field_and_store_nothing() {
    let app = spawn_app().await;
    let response = register(&app, json!({"email": "not-an-email", "password": "short"})).await;
    let body = assert_error(response, 422, "validation_error").await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["email", "password"]);
    let oversized = "x".repeat(1025);
    let response = register(
        &app,
        json!({"email": "a@example.com", "password": oversized}),
    )
    .await;
    assert_error(response, 422, "validation_error").await;
    assert!(app.store().list_users().await.unwrap().is_empty());
}

#[tokio::test]
async fn registration_can_be_turned_off() {
    let app = spawn_app_with(Backend::Sqlite, &[("ALLOW_REGISTRATION", "false")])
        .await
        .unwrap();
    let response = register(
        &app,
        json!({"email": "closed@example.com", "password": "correct horse battery"}),
    )
    .await;
    assert_error(response, 403, "registration_disabled").await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_are_the_same_401() {
    let app = spawn_app().await;
    signed_up(&app, "known@example.com").await;
    for (email, password) in [
        ("known@example.com", "wrong password!"),
        ("nobody@example.com", "correct horse battery"),
        ("not an email", "x"),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/auth/token"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = assert_error(response, 401, "invalid_credentials").await;
        assert_eq!(body["error"]["message"], "incorrect email or password");
    }
}

#[tokio::test]
async fn protected_routes_need_a_valid_bearer_token() {
    let app = spawn_app_with(Backend::Sqlite, &[("SECRET_KEY", SECRET)])
        .await
        .unwrap();
    let token = signed_up(&app, "victim@example.com").await;
    let user_id = app
        .store()
        .user_by_email("victim@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"sub": user_id, "iat": now, "exp": now + 600, "jti": uuid::Uuid::new_v4()});
    let sign = |alg: Algorithm, secret: &str, claims: &Value| {
        jsonwebtoken::encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let mut stranger = claims.clone();
    stranger["sub"] = json!(uuid::Uuid::new_v4());
    // base64url of {"alg":"none","typ":"JWT"}, over the real token's payload, unsigned.
    let unsigned = format!(
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.",
        token.split('.').nth(1).unwrap()
    );
    let cases = [
        ("alg none", unsigned),
        ("HS512", sign(Algorithm::HS512, SECRET, &claims)),
        (
            "other key",
            sign(Algorithm::HS256, "another secret entirely", &claims),
        ),
        ("expired", sign(Algorithm::HS256, SECRET, &expired)),
        ("unknown user", sign(Algorithm::HS256, SECRET, &stranger)),
        ("malformed", "not.a.jwt".to_owned()),
        ("api-key shaped", format!("rk_{}", "0".repeat(64))),
    ];
    for (case, forged) in cases {
        let response = app.me(&forged).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{case}");
        assert_error(response, 401, "unauthorized").await;
    }
    let missing = app.get("/api/v1/auth/me").await;
    assert_error(missing, 401, "unauthorized").await;
    assert_eq!(
        app.me(&token).await.status(),
        200,
        "the real token still works"
    );
}

#[tokio::test]
async fn a_deleted_users_token_stops_working() {
    let app = spawn_app().await;
    let token = signed_up(&app, "gone@example.com").await;
    let user = app
        .store()
        .user_by_email("gone@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(app.store().delete_user(user.id).await.unwrap());
    assert_error(app.me(&token).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn auth_failures_are_counted_by_reason() {
    let app = spawn_app().await;
    app.me("garbage").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"auth_failures_total{reason="malformed"}"#),
        "{metrics}"
    );
}
