//! Rate limits over HTTP: exactly the quota then 429 with headers, in memory and through Redis
//! shared by replicas; per-address limits on the public auth routes; failed logins; and what
//! happens when Redis goes away (fail open or closed, never a 500).

use ragd::domain::{Email, Password, Role};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_error, fresh_postgres_database, service_url, signed_up, spawn_app_with,
};

const SECRET: &str = "test-secret-key-that-is-long-enough-for-hs256-0123456789";
/// Nothing listens on port 1: every Redis round trip is refused at once.
const DEAD_REDIS: &str = "redis://127.0.0.1:1";

/// A user and an access token made through the service, not HTTP: with Redis shared by every
/// test, the per-address limit on the public auth routes would mix tests together.
async fn direct_token(app: &TestApp, email: &str) -> String {
    let accounts = &app.state.accounts;
    let password = "correct horse battery";
    match accounts
        .create(
            Email::parse(email).unwrap(),
            Password::parse(password).unwrap(),
            Role::User,
        )
        .await
    {
        Ok(_) | Err(ragd::services::auth::accounts::AccountError::EmailTaken) => {}
        Err(err) => panic!("create {email}: {err}"),
    }
    accounts
        .login(email, password)
        .await
        .unwrap()
        .token
        .expose()
        .to_owned()
}

fn header(response: &reqwest::Response, name: &str) -> u64 {
    response.headers()[name].to_str().unwrap().parse().unwrap()
}

/// `limit` requests pass with counting-down headers, the next is 429 with `Retry-After`.
async fn admits_exactly_the_limit_then_429(app: &TestApp, token: &str, limit: u64) {
    for n in 1..=limit {
        let response = app.me(token).await;
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(header(&response, "x-ratelimit-limit"), limit);
        assert_eq!(header(&response, "x-ratelimit-remaining"), limit - n);
        assert!(header(&response, "x-ratelimit-reset") <= 60);
    }
    let refused = app.me(token).await;
    let retry_after = header(&refused, "retry-after");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "x-ratelimit-limit"), limit);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), 0);
    assert!(header(&refused, "x-ratelimit-reset") >= 1);
    assert_error(refused, 429, "rate_limited").await;
}

#[tokio::test]
async fn the_memory_limiter_admits_exactly_the_limit_per_user_then_429() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "3")])
        .await
        .unwrap();
    let ada = signed_up(&app, "ada@example.com").await;
    admits_exactly_the_limit_then_429(&app, &ada, 3).await;
    // Another user has their own quota.
    let bob = direct_token(&app, "bob@example.com").await;
    assert_eq!(app.me(&bob).await.status(), 200);
    // Operations routes are never limited and carry no limit headers.
    for _ in 0..5 {
        let health = app.get("/health").await;
        assert_eq!(health.status(), 200);
        assert!(!health.headers().contains_key("x-ratelimit-limit"));
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rate_limited_requests_total")
                && l.contains(r#"route="/api/v1/auth/me""#)),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_api_key_counts_against_its_owners_quota() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "4")])
        .await
        .unwrap();
    let jwt = direct_token(&app, "ada@example.com").await;
    let key = &app.new_api_key(&jwt, "ci").await;
    for _ in 0..3 {
        assert_eq!(app.me(key).await.status(), 200);
    }
    assert_error(app.me(key).await, 429, "rate_limited").await;
    assert_error(app.me(&jwt).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn unknown_routes_stay_404_and_requests_without_credentials_401_before_any_limit() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "1")])
        .await
        .unwrap();
    for _ in 0..3 {
        assert_error(app.get("/api/v1/no-such-route").await, 404, "not_found").await;
        let anonymous = app.get("/api/v1/auth/me").await;
        assert!(!anonymous.headers().contains_key("x-ratelimit-limit"));
        assert_error(anonymous, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn the_public_auth_routes_are_limited_per_client_address() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "2")])
        .await
        .unwrap();
    for n in 0..2 {
        let response = app
            .client
            .post(app.url("/api/v1/auth/register"))
            .json(
                &json!({"email": format!("u{n}@example.com"), "password": "correct horse battery"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(header(&response, "x-ratelimit-remaining"), 1 - n);
    }
    let refused = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"email": "u0@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "rate_limited").await;
    let stored = app.store().list_users().await.unwrap();
    assert_eq!(stored.len(), 2);
}

/// Registers through `forwarded_for` (an `X-Forwarded-For` value, or none) and returns the
/// status.
async fn register_via(app: &TestApp, n: usize, forwarded_for: Option<&str>) -> u16 {
    let mut request = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": format!("p{n}@example.com"), "password": "correct horse battery"}));
    if let Some(chain) = forwarded_for {
        request = request.header("x-forwarded-for", chain);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_address_limit() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("RATE_LIMIT_PER_MINUTE", "1"),
            ("TRUSTED_PROXIES", "127.0.0.0/8,::1"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(register_via(&app, 0, Some("203.0.113.7")).await, 201);
    assert_eq!(register_via(&app, 1, Some("203.0.113.7")).await, 429);
    // Another client behind the same proxy has its own quota...
    assert_eq!(register_via(&app, 2, Some("198.51.100.9")).await, 201);
    // ...and a client cannot pick a fresh one by writing the header itself: the proxy appends
    // the address it saw, and only that is believed.
    assert_eq!(
        register_via(&app, 3, Some("192.0.2.1, 203.0.113.7")).await,
        429
    );
}

#[tokio::test]
async fn requests_that_fail_authentication_spend_their_address_quota() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "3")])
        .await
        .unwrap();
    let token = direct_token(&app, "ada@example.com").await;
    let guess = || app.me("rk_00000000000000000000000000000000000000000000");

    for _ in 0..3 {
        assert_error(guess().await, 401, "unauthorized").await;
    }
    let refused = guess().await;
    assert!(header(&refused, "retry-after") >= 1);
    assert_error(refused, 429, "rate_limited").await;
    // A user's own quota is theirs, whatever the address has spent.
    assert_eq!(app.me(&token).await.status(), 200);
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_address_is_ignored() {
    let app = spawn_app_with(Backend::Sqlite, &[("RATE_LIMIT_PER_MINUTE", "1")])
        .await
        .unwrap();
    assert_eq!(register_via(&app, 0, Some("203.0.113.7")).await, 201);
    assert_eq!(register_via(&app, 1, Some("198.51.100.9")).await, 429);
}

#[tokio::test]
async fn failed_logins_are_limited_per_email_even_with_the_right_password_next() {
    let app = spawn_app_with(Backend::Sqlite, &[]).await.unwrap();
    signed_up(&app, "ada@example.com").await;
    let login = |password: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/token"))
            .json(&json!({"email": "ADA@example.com", "password": password}))
            .send()
    };
    // A successful login (in signed_up) did not count; ten failures do.
    for _ in 0..10 {
        assert_error(
            login("wrong password").await.unwrap(),
            401,
            "invalid_credentials",
        )
        .await;
    }
    let refused = login("correct horse battery").await.unwrap();
    assert!(header(&refused, "retry-after") >= 1);
    // The quota headers are the failed-login limit's, not the per-address request quota's.
    assert_eq!(
        (
            header(&refused, "x-ratelimit-limit"),
            header(&refused, "x-ratelimit-remaining")
        ),
        (10, 0)
    );
    assert_error(refused, 429, "rate_limited").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rate_limited_requests_total")
                && l.contains(r#"route="/api/v1/auth/token""#)),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_redis_limiter_admits_exactly_the_limit_then_429() {
    let Some(redis) = service_url("TEST_REDIS_URL") else {
        return;
    };
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("REDIS_URL", &redis), ("RATE_LIMIT_PER_MINUTE", "3")],
    )
    .await
    .unwrap();
    let token = direct_token(&app, "ada@example.com").await;
    admits_exactly_the_limit_then_429(&app, &token, 3).await;
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["checks"]["cache"]["status"], "ok", "{ready}");
}

#[tokio::test]
async fn two_replicas_sharing_redis_admit_the_limit_once_between_them() {
    let (Some(redis), Some(database)) = (
        service_url("TEST_REDIS_URL"),
        fresh_postgres_database().await,
    ) else {
        return;
    };
    let shared = [
        ("REDIS_URL", redis.as_str()),
        ("DATABASE_URL", database.as_str()),
        ("SECRET_KEY", SECRET),
        ("RATE_LIMIT_PER_MINUTE", "4"),
    ];
    let first = spawn_app_with(Backend::Sqlite, &shared).await.unwrap();
    let second = spawn_app_with(Backend::Sqlite, &shared).await.unwrap();
    let token = direct_token(&first, "ada@example.com").await;
    let mut admitted = 0;
    for n in 0..10 {
        let replica = if n % 2 == 0 { &first } else { &second };
        match replica.me(&token).await.status().as_u16() {
            200 => admitted += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(admitted, 4);
}

#[tokio::test]
async fn redis_down_with_fail_open_admits_unlimited_and_reports_degraded() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[
            ("REDIS_URL", DEAD_REDIS),
            ("RATE_LIMIT_PER_MINUTE", "1"),
            ("RATE_LIMIT_FAIL_OPEN", "true"),
        ],
    )
    .await
    .unwrap();
    let token = direct_token(&app, "ada@example.com").await;
    for _ in 0..3 {
        let response = app.me(&token).await;
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("x-ratelimit-limit"));
    }
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["cache"]["status"], "degraded", "{ready}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("rate_limiter_errors_total"), "{metrics}");
}

#[tokio::test]
async fn redis_down_with_fail_closed_answers_503_in_the_error_shape() {
    let app = spawn_app_with(
        Backend::Sqlite,
        &[("REDIS_URL", DEAD_REDIS), ("RATE_LIMIT_FAIL_OPEN", "false")],
    )
    .await
    .unwrap();
    let token = direct_token(&app, "ada@example.com").await;
    let refused = app.me(&token).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 503, "rate_limiter_unavailable").await;
    let login = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_error(login, 503, "rate_limiter_unavailable").await;
    // Unlimited routes keep answering; readiness says why the replica is out.
    assert_eq!(app.get("/health").await.status(), 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["cache"]["status"], "error", "{ready}");
}
