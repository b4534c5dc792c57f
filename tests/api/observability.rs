//! Metrics are labelled by route template, and logs never carry secrets.

use crate::helpers::{Backend, spawn_app, spawn_app_with};

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

#[tokio::test]
async fn cors_allows_the_configured_origin_only() {
    let app = spawn_app_with(Backend::Sqlite, &[("CORS_ORIGINS", "http://app.example")])
        .await
        .unwrap();
    let allowed = app
        .client
        .get(app.url("/health"))
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    let other = app
        .client
        .get(app.url("/health"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn cors_headers_go_only_to_cross_origin_requests_and_every_response_varies_by_origin() {
    let app = spawn_app_with(Backend::Sqlite, &[("CORS_ORIGINS", "http://app.example")])
        .await
        .unwrap();
    let cross_origin = app
        .client
        .get(app.url("/health"))
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    let exposed = cross_origin.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-ratelimit-remaining"), "{exposed}");
    assert!(
        cross_origin.headers()["vary"]
            .to_str()
            .unwrap()
            .contains("origin")
    );

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
