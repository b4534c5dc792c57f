//! /api/v1/chat and /api/v1/chat/stream through the real router, against a real
//! OpenAI-compatible mock server, the built-in offline provider, and failing providers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, signed_up, spawn_app, spawn_app_with};
use crate::llm_mock::{COMPLETION_TOKENS, LlmMock, PROMPT_TOKENS, Reply};

pub async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The JSON of every `data:` line of an SSE body (`[DONE]` as the string "[DONE]").
pub async fn sse_data(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        .collect()
}

async fn app_with_mock(reply: Reply, extra: &[(&str, &str)]) -> (TestApp, LlmMock, String) {
    let mock = LlmMock::start(reply).await;
    let app = spawn_app_with(Backend::Sqlite, &mock.settings(extra))
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    (app, mock, token)
}

/// The caller's usage rows, after the batching writer has written what it holds.
async fn usage_rows(app: &TestApp, token: &str) -> Vec<ragd::store::UsageEvent> {
    app.state.chat.usage().flush().await;
    app.store()
        .list_usage(app.user_id(token).await, 100)
        .await
        .unwrap()
}

/// What ragd's tokenizer counts for a prompt of one user message (`question(text)`).
fn user_prompt_tokens(text: &str) -> i32 {
    let message = ragd::services::llm::ChatMessage::new(ragd::services::llm::Role::User, text);
    let count = ragd::services::llm::tokens::count_messages("gpt-4o-mini", &[message]);
    i32::try_from(count).unwrap()
}

fn question(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn chat_requires_authentication() {
    let app = spawn_app().await;
    for path in ["/api/v1/chat", "/api/v1/chat/stream"] {
        let response = app
            .client
            .post(app.url(path))
            .json(&question("Hi"))
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "unauthorized").await;
    }
}

#[tokio::test]
async fn with_nothing_configured_the_offline_provider_answers_end_to_end() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;

    let response = post(&app, &token, "/api/v1/chat", &question("What is ragd?")).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["provider"], "local");
    assert_eq!(body["model"], "local/extractive");
    assert!(
        body["response"].as_str().unwrap().contains("no documents"),
        "{body}"
    );
    assert_eq!(body["citations"], json!([]));
    assert_eq!(body["tokens_used"], body["usage"]["total_tokens"]);
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(body["processing_time_ms"].is_u64());

    let events = sse_data(
        post(
            &app,
            &token,
            "/api/v1/chat/stream",
            &question("What is ragd?"),
        )
        .await,
    )
    .await;
    let done = events.last().unwrap();
    assert_eq!(done["done"], true);
    assert_eq!(done["provider"], "local");
    let streamed: String = events[..events.len() - 1]
        .iter()
        .map(|event| event["token"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, body["response"].as_str().unwrap());
}

#[tokio::test]
async fn a_provider_answer_carries_its_own_usage_and_is_recorded() {
    let (app, mock, token) = app_with_mock(Reply::Answer("Hello there, Ada."), &[]).await;
    let request = json!({
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Greet me"}
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "use_rag": false
    });

    let response = post(&app, &token, "/api/v1/chat", &request).await;

    assert_eq!(response.status(), 200);
    let overhead = response.headers()["x-ragd-overhead-ms"].to_str().unwrap();
    assert!(overhead.parse::<f64>().unwrap() >= 0.0, "{overhead}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["response"], "Hello there, Ada.");
    assert_eq!(body["provider"], "openai");
    assert_eq!(body["model"], "gpt-4o-mini");
    let total = PROMPT_TOKENS + COMPLETION_TOKENS;
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": total})
    );
    assert_eq!(body["tokens_used"], total);

    let sent = &mock.requests()[0];
    assert_eq!(sent["model"], "gpt-4o-mini");
    assert_eq!(sent["max_tokens"], 50);
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(
        sent["messages"][1],
        json!({"role": "user", "content": "Greet me"})
    );

    let rows = usage_rows(&app, &token).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (
            row.model.as_str(),
            row.provider.as_str(),
            row.outcome.as_str()
        ),
        ("gpt-4o-mini", "openai", "success")
    );
    assert_eq!((row.prompt_tokens, row.completion_tokens), (11, 7));
    assert!(row.ttft_ms.is_none());
}

#[tokio::test]
async fn a_stream_sends_tokens_as_they_come_then_done_and_records_usage() {
    let (app, _mock, token) = app_with_mock(Reply::Answer("One two three"), &[]).await;

    for (path, mut body) in [
        ("/api/v1/chat/stream", question("Count")),
        ("/api/v1/chat", question("Count")),
    ] {
        if path == "/api/v1/chat" {
            body["stream"] = json!(true);
        }
        let events = sse_data(post(&app, &token, path, &body).await).await;

        assert_eq!(
            events[..3],
            [
                json!({"token": "One "}),
                json!({"token": "two "}),
                json!({"token": "three"})
            ],
            "{path}"
        );
        let done = &events[3];
        assert_eq!(done["done"], true);
        assert_eq!(
            done["usage"]["total_tokens"],
            PROMPT_TOKENS + COMPLETION_TOKENS
        );
        assert_eq!(
            (done["model"].as_str(), done["provider"].as_str()),
            (Some("gpt-4o-mini"), Some("openai"))
        );
        assert!(done["processing_time_ms"].is_u64());
        assert_eq!(
            events.len(),
            4,
            "no citations event without retrieval: {events:?}"
        );
    }

    let rows = usage_rows(&app, &token).await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|row| row.outcome == "success" && row.ttft_ms.is_some())
    );
}

#[tokio::test]
async fn invalid_requests_name_each_field_and_reach_no_provider() {
    let (app, mock, token) = app_with_mock(Reply::Answer("unused"), &[]).await;
    let cases = [
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "user", "content": ""}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x".repeat(10_001)}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "robot", "content": "Hi"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "temperature": 2.5}),
            "temperature",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4097}),
            "max_tokens",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "top_k": 0}),
            "top_k",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "document_ids": ["nope"]}),
            "document_ids[0]",
        ),
    ];
    for (body, field) in cases {
        let response = post(&app, &token, "/api/v1/chat", &body).await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{error}");
    }
    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({"role": "user", "content": "Hi"}))
        .collect();
    let response = post(
        &app,
        &token,
        "/api/v1/chat/stream",
        &json!({"messages": too_many}),
    )
    .await;
    assert_error(response, 422, "validation_error").await;
    let malformed = app
        .client
        .post(app.url("/api/v1/chat"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "malformed_json").await;

    assert!(mock.requests().is_empty());
    assert!(usage_rows(&app, &token).await.is_empty());
}

#[tokio::test]
async fn a_conversation_longer_than_the_context_window_is_refused_before_the_provider() {
    let (app, mock, token) = app_with_mock(Reply::Answer("unused"), &[]).await;
    // gpt-4 has an 8,192-token window; 10 messages of ~2,000 tokens do not fit.
    let long = "lorem ipsum ".repeat(800);
    let messages: Vec<Value> = (0..10)
        .map(|_| json!({"role": "user", "content": long}))
        .collect();

    let response = post(
        &app,
        &token,
        "/api/v1/chat",
        &json!({"messages": messages, "model": "gpt-4"}),
    )
    .await;

    let error = assert_error(response, 400, "context_length_exceeded").await;
    assert!(
        error["error"]["message"].as_str().unwrap().contains("8192"),
        "{error}"
    );
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_provider_error_is_502_and_recorded_as_an_error() {
    let (app, _mock, token) = app_with_mock(Reply::Status(500), &[]).await;

    let response = post(&app, &token, "/api/v1/chat", &question("Hi")).await;
    // A failed call reports ragd's own time too.
    assert!(response.headers().contains_key("x-ragd-overhead-ms"));
    let error = assert_error(response, 502, "provider_error").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai"),
        "{error}"
    );
    let stream = post(&app, &token, "/api/v1/chat/stream", &question("Hi")).await;
    assert!(stream.headers().contains_key("x-ragd-overhead-ms"));
    assert_error(stream, 502, "provider_error").await;

    let rows = usage_rows(&app, &token).await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|row| row.outcome == "error" && row.provider == "openai")
    );
}

#[tokio::test]
async fn a_provider_that_hangs_is_a_504_within_the_timeout() {
    let (app, _mock, token) = app_with_mock(Reply::Hang, &[("LLM_TIMEOUT_SECONDS", "1")]).await;

    let response = post(&app, &token, "/api/v1/chat", &question("Hi")).await;

    assert_error(response, 504, "provider_timeout").await;
}

#[tokio::test]
async fn a_handler_past_request_timeout_seconds_is_503() {
    let settings = [
        ("LLM_TIMEOUT_SECONDS", "30"),
        ("REQUEST_TIMEOUT_SECONDS", "1"),
    ];
    let (app, _mock, token) = app_with_mock(Reply::Hang, &settings).await;

    let response = post(&app, &token, "/api/v1/chat", &question("Hi")).await;

    assert_error(response, 503, "service_unavailable").await;
}

#[tokio::test]
async fn a_model_without_a_configured_provider_is_503() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;

    for model in ["gpt-4o-mini", "ollama/llama3.2", "claude-3-5-haiku-latest"] {
        let body = json!({"messages": [{"role": "user", "content": "Hi"}], "model": model});
        let response = post(&app, &token, "/api/v1/chat", &body).await;
        assert_error(response, 503, "provider_not_configured").await;
    }
}

#[tokio::test]
async fn a_failing_provider_falls_back_to_the_next_model() {
    let (app, mock, token) = app_with_mock(
        Reply::Status(503),
        &[("FALLBACK_MODELS", "local/extractive")],
    )
    .await;

    let response = post(&app, &token, "/api/v1/chat", &question("Hi")).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["provider"].as_str(), body["model"].as_str()),
        (Some("local"), Some("local/extractive"))
    );
    assert_eq!(mock.requests().len(), 1);
    let events = sse_data(post(&app, &token, "/api/v1/chat/stream", &question("Hi")).await).await;
    assert_eq!(events.last().unwrap()["provider"], "local");
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_an_error_event() {
    let (app, _mock, token) = app_with_mock(Reply::CutAfter(&["Hel", "lo"]), &[]).await;

    let events = sse_data(post(&app, &token, "/api/v1/chat/stream", &question("Hi")).await).await;

    assert_eq!(
        events[..2],
        [json!({"token": "Hel"}), json!({"token": "lo"})]
    );
    assert_eq!(events[2]["error"]["code"], "provider_error", "{events:?}");
    assert!(events[2]["error"]["message"].is_string());
    assert_eq!(events.len(), 3);
    let rows = usage_rows(&app, &token).await;
    assert_eq!(rows[0].outcome, "error");
    // The answer received before the cut is counted: "Hello" is one token.
    let answered = ragd::services::llm::tokens::count_text("gpt-4o-mini", "Hello");
    assert_eq!((rows[0].completion_tokens, answered), (1, 1));
}

#[tokio::test]
async fn a_client_that_disconnects_closes_the_upstream_request() {
    let (app, mock, token) = app_with_mock(Reply::HoldOpen(&["Hel"]), &[]).await;

    let mut response = post(&app, &token, "/api/v1/chat/stream", &question("Hi")).await;
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hel"));
    drop(response);

    tokio::time::timeout(Duration::from_secs(10), mock.dropped.notified())
        .await
        .expect("the upstream connection was closed");
    let rows = usage_rows(&app, &token).await;
    assert_eq!(rows[0].outcome, "cancelled");
    // No usage report came: ragd counts the prompt (only now: it fit the window by its bytes
    // alone, so nothing counted it before the call) and the one token received.
    let prompt = user_prompt_tokens("Hi");
    assert_eq!(
        (rows[0].prompt_tokens, rows[0].completion_tokens),
        (prompt, 1)
    );
}

#[tokio::test]
async fn a_client_that_leaves_before_the_first_token_is_charged_its_prompt() {
    let (app, _mock, token) = app_with_mock(Reply::Hang, &[]).await;

    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(app.url("/api/v1/chat/stream"))
        .bearer_auth(&token)
        .json(&question("Hi"))
        .send()
        .await;
    assert!(gave_up.is_err());

    let mut rows = Vec::new();
    for _ in 0..50 {
        rows = usage_rows(&app, &token).await;
        if !rows.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows[0].outcome, "cancelled");
    let prompt = user_prompt_tokens("Hi");
    assert_eq!(
        (rows[0].prompt_tokens, rows[0].completion_tokens),
        (prompt, 0)
    );
}

#[tokio::test]
async fn a_request_larger_than_the_token_limit_is_refused() {
    let (app, mock, token) =
        app_with_mock(Reply::Answer("Hi"), &[("TOKEN_LIMIT_PER_MINUTE", "500")]).await;

    let big = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1000});
    let refused = post(&app, &token, "/api/v1/chat", &big).await;
    // Like every limited response, it carries quota headers (the request quota's).
    assert!(refused.headers().contains_key("x-ratelimit-limit"));
    assert_error(refused, 429, "token_limit_exceeded").await;
    assert!(mock.requests().is_empty());

    let small = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 100});
    assert_eq!(
        post(&app, &token, "/api/v1/chat", &small).await.status(),
        200
    );
}

#[tokio::test]
async fn usage_is_recorded_per_user_on_postgres_too() {
    let mock = LlmMock::start(Reply::Answer("Hi")).await;
    let Some(app) = spawn_app_with(Backend::Postgres, &mock.settings(&[])).await else {
        return;
    };
    let ada = signed_up(&app, "ada@example.com").await;
    let bob = signed_up(&app, "bob@example.com").await;

    assert_eq!(
        post(&app, &ada, "/api/v1/chat", &question("Hi"))
            .await
            .status(),
        200
    );
    let events = sse_data(post(&app, &ada, "/api/v1/chat/stream", &question("Hi")).await).await;
    assert_eq!(events.last().unwrap()["done"], true);

    assert_eq!(usage_rows(&app, &ada).await.len(), 2);
    assert!(usage_rows(&app, &bob).await.is_empty());
}
