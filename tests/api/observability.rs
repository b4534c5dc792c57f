//! Metrics are labelled by route template, and logs never carry secrets.

use serde_json::json;

use crate::chat::{post, sse_data};
use crate::helpers::{Backend, TestApp, signed_up, spawn_app, spawn_app_with};
use crate::llm_mock::{LlmMock, PROMPT_TOKENS, Reply};

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

/// The `/metrics` lines of `metric` whose labels include every one of `labels`.
fn series<'a>(text: &'a str, metric: &str, labels: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.starts_with(&format!("{metric}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .collect()
}

#[tokio::test]
async fn llm_calls_are_counted_by_provider_and_model_and_unknown_names_do_not_become_labels() {
    let mock = LlmMock::start(Reply::Answer("Hello there")).await;
    let app = spawn_app_with(Backend::Sqlite, &mock.settings(&[]))
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    // Names unique to this test, as other tests in the process share the recorder.
    let accepted = format!("served-{}", uuid::Uuid::new_v4());
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]});
    let answered = post(&app, &token, "/v1/chat/completions", &chat(&accepted)).await;
    assert_eq!(answered.status(), 200);

    let text = app.get("/metrics").await.text().await.unwrap();
    let model = format!(r#"model="{accepted}""#);
    let provider = r#"provider="openai""#;
    assert_eq!(
        series(
            &text,
            "llm_requests_total",
            &[provider, &model, r#"outcome="success""#]
        ),
        [format!(
            r#"llm_requests_total{{provider="openai",model="{accepted}",outcome="success"}} 1"#
        )]
    );
    let prompt = series(
        &text,
        "llm_tokens_total",
        &[provider, &model, r#"kind="prompt""#],
    );
    assert_eq!(prompt.len(), 1, "{text}");
    assert!(prompt[0].ends_with(&format!(" {PROMPT_TOKENS}")), "{text}");
    assert_eq!(
        series(
            &text,
            "llm_request_duration_seconds_count",
            &[provider, &model]
        )
        .len(),
        1
    );
    // The output rate is a histogram too (a summary's quantiles fall to 0 between calls).
    let rate = series(
        &text,
        "llm_output_tokens_per_second_bucket",
        &[provider, &model],
    );
    assert!(!rate.is_empty(), "{text}");
    // The call went through a lane of clients (the mock speaks HTTP/1.1: a negotiating one).
    let lanes = series(&text, "llm_client_lanes", &[r#"kind="negotiating""#]);
    assert_eq!(lanes.len(), 1, "{text}");
    let open: f64 = lanes[0].rsplit(' ').next().unwrap().parse().unwrap();
    assert!(open >= 1.0, "{text}");

    // A provider that refuses every name: none of them becomes a label.
    let refusing = LlmMock::start(Reply::Status(404)).await;
    let app = spawn_app_with(Backend::Sqlite, &refusing.settings(&[]))
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    let made_up = format!("made-up-{}", uuid::Uuid::new_v4());
    for n in 0..3 {
        let refused = post(
            &app,
            &token,
            "/v1/chat/completions",
            &chat(&format!("{made_up}-{n}")),
        )
        .await;
        assert_eq!(refused.status(), 502);
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains(&made_up), "{text}");
    assert!(
        !series(
            &text,
            "llm_requests_total",
            &[provider, r#"model="other""#, r#"outcome="error""#]
        )
        .is_empty(),
        "{text}"
    );
    assert!(!series(&text, "llm_errors_total", &[provider, r#"kind="upstream""#]).is_empty());
}

#[tokio::test]
async fn made_up_methods_share_one_label() {
    let app = spawn_app().await;
    let made_up = format!("BREW{}", uuid::Uuid::new_v4().simple()).to_uppercase();
    let method = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();
    for path in ["/health", "/no/such/route"] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{path}");
    }

    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains(&made_up), "{text}");
    let other = series(
        &text,
        "http_requests_total",
        &[r#"method="other""#, r#"route="/health""#],
    );
    assert_eq!(other.len(), 1, "{text}");
}

#[tokio::test]
async fn a_stream_cut_mid_way_still_counts_its_tokens() {
    let mock = LlmMock::start(Reply::CutAfter(&["Hel", "lo"])).await;
    let app = spawn_app_with(Backend::Sqlite, &mock.settings(&[]))
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    let model = format!("cut-{}", uuid::Uuid::new_v4());
    let chat = json!({"model": model, "use_rag": false,
        "messages": [{"role": "user", "content": "Hi"}]});

    let events = sse_data(post(&app, &token, "/api/v1/chat/stream", &chat).await).await;

    assert!(events.last().unwrap().get("error").is_some(), "{events:?}");
    let text = app.get("/metrics").await.text().await.unwrap();
    let label = format!(r#"model="{model}""#);
    for kind in [r#"kind="prompt""#, r#"kind="completion""#] {
        let counted = series(&text, "llm_tokens_total", &[&label, kind]);
        assert_eq!(counted.len(), 1, "{text}");
        let tokens: f64 = counted[0].rsplit(' ').next().unwrap().parse().unwrap();
        assert!(tokens >= 1.0, "{}", counted[0]);
    }
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
