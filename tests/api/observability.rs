//! Metrics are labelled by route template, and logs never carry secrets.

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

#[tokio::test]
async fn metrics_count_requests_by_route_template_with_durations() {
    let app = spawn_app().await;
    app.get("/health").await;
    app.get("/documents-that-do-not-exist/123").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/health",status="200"}"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "histogram present"
    );
    assert!(
        text.contains(r#"route="unmatched""#),
        "unknown paths share one label"
    );
    assert!(
        !text.contains("documents-that-do-not-exist"),
        "raw paths never become labels"
    );
    assert!(text.contains("process_resident_memory_bytes"));
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = spawn_app_with(Backend::Sqlite, &[("METRICS_ENABLED", "false")])
        .await
        .unwrap();
    assert_eq!(app.get("/metrics").await.status(), 404);
}

/// `/health` as a browser on `origin` asks for it.
async fn health_from(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .get(app.url("/health"))
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_allows_the_configured_origin_only() {
    let app = spawn_app_with(Backend::Sqlite, &[("CORS_ORIGINS", "http://app.example")])
        .await
        .unwrap();
    let allowed = health_from(&app, "http://app.example").await;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let exposed = allowed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-ratelimit-remaining"), "{exposed}");
    assert!(
        allowed.headers()["vary"]
            .to_str()
            .unwrap()
            .contains("origin")
    );

    let other = health_from(&app, "http://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // Not a CORS request: no CORS headers, but the answer still varies by origin for caches.
    let same_origin = app.get("/health").await;
    assert_eq!(same_origin.status(), 200);
    assert_eq!(same_origin.headers()["vary"], "origin");
    assert!(
        same_origin
            .headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        same_origin.headers()
    );
}
