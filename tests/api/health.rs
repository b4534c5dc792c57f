use crate::helpers::{Backend, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_ok_with_the_version() {
    let app = spawn_app().await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn readiness_reports_every_check() {
    let app = spawn_app().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    for check in ["database", "cache", "llm", "embeddings"] {
        assert!(
            body["checks"][check]["status"].is_string(),
            "{check} in {body}"
        );
    }
    assert_eq!(body["checks"]["database"]["status"], "ok");
}

#[tokio::test]
async fn readiness_is_503_naming_the_database_when_it_is_gone() {
    let app = spawn_app().await;
    app.store().close().await;
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"]["status"], "error");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn readiness_on_postgres_is_503_when_the_server_is_gone() {
    let Some(app) = spawn_app_with(Backend::Postgres, &[]).await else {
        return;
    };
    assert_eq!(app.get("/health/ready").await.status(), 200);
    app.store().close().await;
    assert_eq!(app.get("/health/ready").await.status(), 503);
}
