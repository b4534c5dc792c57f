//! The OpenAI-compatible surface (/v1) checked field by field against OpenAI's schema, with
//! errors in OpenAI's shape.

use serde_json::{Value, json};

use crate::chat::{post, sse_data};
use crate::helpers::{Backend, TestApp, signed_up, spawn_app, spawn_app_with};
use crate::llm_mock::{COMPLETION_TOKENS, LlmMock, PROMPT_TOKENS, Reply};

/// An app whose OpenAI-compatible provider is a mock answering `reply`, and a user's token.
pub async fn app_with_mock(reply: Reply) -> (TestApp, LlmMock, String) {
    let mock = LlmMock::start(reply).await;
    let app = spawn_app_with(Backend::Sqlite, &mock.settings(&[]))
        .await
        .unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    (app, mock, token)
}

/// Asserts that the built-in model refuses `request` as an operation it cannot do (400
/// `unsupported_operation`, in OpenAI's error shape).
pub async fn assert_the_local_model_refuses(app: &TestApp, token: &str, request: &Value) {
    let body = assert_openai_error(
        post(app, token, "/v1/chat/completions", request).await,
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(body["error"]["code"], "unsupported_operation", "{body}");
}

/// Asserts that each request is a 422 naming its `param`, and that none reached `mock`.
pub async fn assert_refused_before_any_call<'a>(
    app: &TestApp,
    token: &str,
    mock: &LlmMock,
    cases: impl IntoIterator<Item = (Value, &'a str)>,
) {
    for (request, param) in cases {
        let body = assert_openai_error(
            post(app, token, "/v1/chat/completions", &request).await,
            422,
            "invalid_request_error",
        )
        .await;
        assert_eq!(body["error"]["param"], param, "{request}");
    }
    assert!(mock.requests().is_empty(), "nothing reached the provider");
}

/// OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`, nothing else.
pub async fn assert_openai_error(response: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(error["type"], kind, "{body}");
    assert!(
        error.contains_key("param") && error.contains_key("code"),
        "{body}"
    );
    body
}

fn hello() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]})
}

#[tokio::test]
async fn v1_routes_require_a_bearer_token_and_answer_in_openai_error_shape() {
    let app = spawn_app().await;
    let unauthenticated = [
        app.client.get(app.url("/v1/models")),
        app.client
            .post(app.url("/v1/chat/completions"))
            .json(&hello()),
        app.client
            .post(app.url("/v1/embeddings"))
            .json(&json!({"input": "x"})),
    ];
    for request in unauthenticated {
        let response = request.send().await.unwrap();
        assert_openai_error(response, 401, "authentication_error").await;
    }
}

#[tokio::test]
async fn models_lists_every_configured_provider_in_openai_shape() {
    let (app, _mock, token) = app_with_mock(Reply::Answer("unused")).await;

    let response = app
        .client
        .get(app.url("/v1/models"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o-mini", "local/extractive"]);
    for model in body["data"].as_array().unwrap() {
        assert_eq!(model["object"], "model");
        assert!(
            model["created"].is_i64() && model["owned_by"].is_string(),
            "{model}"
        );
    }
}

#[tokio::test]
async fn a_completion_has_every_field_of_openai_chat_completion() {
    let (app, mock, token) = app_with_mock(Reply::Answer("Hello!")).await;
    let mut request = hello();
    request["temperature"] = json!(0.1);
    request["max_completion_tokens"] = json!(30);
    request["n"] = json!(1);
    request["messages"] = json!([
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hello"}]}
    ]);

    let response = post(&app, &token, "/v1/chat/completions", &request).await;

    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-ragd-overhead-ms"));
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"].as_array().unwrap().len(), 1);
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Hello!");
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["logprobs"].is_null());
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS})
    );
    assert!(
        body.get("citations").is_none(),
        "citations only when ragd.use_rag asks"
    );

    let sent = &mock.requests()[0];
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "Be terse."})
    );
    assert_eq!(
        sent["messages"][1],
        json!({"role": "user", "content": "Say hello"})
    );
    assert_eq!(sent["max_tokens"], 30);
    assert_eq!(sent["temperature"], 0.1);
}

#[tokio::test]
async fn a_temperature_the_client_did_not_send_is_not_sent_upstream() {
    // OpenAI's reasoning models refuse any temperature but their default.
    let (app, mock, token) = app_with_mock(Reply::Answer("Hi")).await;

    let response = post(&app, &token, "/v1/chat/completions", &hello()).await;

    assert_eq!(response.status(), 200);
    let sent = &mock.requests()[0];
    assert!(sent.get("temperature").is_none(), "{sent}");
}

#[tokio::test]
async fn a_streamed_completion_sends_chunks_then_usage_then_done() {
    let (app, _mock, token) = app_with_mock(Reply::Answer("Hi there")).await;
    let mut request = hello();
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});

    let events = sse_data(post(&app, &token, "/v1/chat/completions", &request).await).await;

    assert_eq!(events.len(), 6, "{events:?}");
    let id = events[0]["id"].as_str().unwrap();
    for chunk in &events[..5] {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["model"], "gpt-4o-mini");
        assert!(chunk["created"].is_i64());
    }
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(events[1]["choices"][0]["delta"], json!({"content": "Hi "}));
    assert_eq!(
        events[2]["choices"][0]["delta"],
        json!({"content": "there"})
    );
    assert!(events[1]["choices"][0]["finish_reason"].is_null());
    assert!(events[1]["usage"].is_null() && events[1].get("usage").is_some());
    assert_eq!(events[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[3]["choices"][0]["delta"], json!({}));
    assert_eq!(events[4]["choices"], json!([]));
    assert_eq!(
        events[4]["usage"]["total_tokens"],
        PROMPT_TOKENS + COMPLETION_TOKENS
    );
    assert_eq!(events[5], "[DONE]");
    assert!(events[0].get("citations").is_none());

    request["stream_options"] = json!({"include_usage": false});
    request["ragd"] = json!({"use_rag": true, "top_k": 3});
    let events = sse_data(post(&app, &token, "/v1/chat/completions", &request).await).await;
    assert_eq!(events.len(), 5, "no usage chunk: {events:?}");
    assert!(events[1].get("usage").is_none());
    assert_eq!(
        events[0]["citations"],
        json!([]),
        "citations in the first chunk when asked"
    );
}

#[tokio::test]
async fn an_answer_cut_at_max_tokens_has_finish_reason_length() {
    let (app, _mock, token) = app_with_mock(Reply::Truncated("Hi there")).await;
    let body: Value = post(&app, &token, "/v1/chat/completions", &hello())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "length");

    let mut request = hello();
    request["stream"] = json!(true);
    let events = sse_data(post(&app, &token, "/v1/chat/completions", &request).await).await;
    let reasons: Vec<&Value> = events
        .iter()
        .filter_map(|event| event["choices"][0].get("finish_reason"))
        .filter(|reason| !reason.is_null())
        .collect();
    assert_eq!(reasons, [&json!("length")], "{events:?}");
}

#[tokio::test]
async fn long_conversations_and_long_answers_are_taken_as_openai_takes_them() {
    let (app, mock, token) = app_with_mock(Reply::Answer("Hi")).await;
    let long = "word ".repeat(4_000); // 20,000 characters: over ragd's own chat bound
    let request = json!({"model": "gpt-4o-mini", "max_tokens": 16_000,
        "messages": [{"role": "user", "content": long}]});

    let response = post(&app, &token, "/v1/chat/completions", &request).await;

    assert_eq!(response.status(), 200);
    assert_eq!(mock.requests()[0]["max_tokens"], 16_000);
    let too_many = json!({"model": "gpt-4o-mini", "max_tokens": 128_001,
        "messages": [{"role": "user", "content": "Hi"}]});
    let body = assert_openai_error(
        post(&app, &token, "/v1/chat/completions", &too_many).await,
        422,
        "invalid_request_error",
    )
    .await;
    assert_eq!(body["error"]["param"], "max_tokens");

    let two =
        json!({"model": "gpt-4o-mini", "n": 2, "messages": [{"role": "user", "content": "Hi"}]});
    let body = assert_openai_error(
        post(&app, &token, "/v1/chat/completions", &two).await,
        422,
        "invalid_request_error",
    )
    .await;
    assert_eq!(body["error"]["param"], "n");
    let mut one = hello();
    one["n"] = json!(1);
    assert_eq!(
        post(&app, &token, "/v1/chat/completions", &one)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn v1_failures_use_openai_error_shape() {
    let (app, _mock, token) = app_with_mock(Reply::Status(500)).await;

    let failed = post(&app, &token, "/v1/chat/completions", &hello()).await;
    assert!(failed.headers().contains_key("x-ragd-overhead-ms"));
    let body = assert_openai_error(failed, 502, "api_error").await;
    assert_eq!(body["error"]["code"], "provider_error");

    let invalid = json!({"model": "gpt-4o-mini", "messages": [{"role": "function", "content": "x"}], "temperature": 9});
    let body = assert_openai_error(
        post(&app, &token, "/v1/chat/completions", &invalid).await,
        422,
        "invalid_request_error",
    )
    .await;
    assert_eq!(body["error"]["param"], "messages[0].role");

    let unconfigured =
        json!({"model": "ollama/llama3.2", "messages": [{"role": "user", "content": "Hi"}]});
    let body = assert_openai_error(
        post(&app, &token, "/v1/chat/completions", &unconfigured).await,
        503,
        "api_error",
    )
    .await;
    assert_eq!(body["error"]["code"], "provider_not_configured");

    // As OpenAI answers it: 400, invalid_request_error, code context_length_exceeded.
    let long = "lorem ipsum ".repeat(800);
    let too_long = json!({"model": "gpt-4", "messages": (0..10)
        .map(|_| json!({"role": "user", "content": long}))
        .collect::<Vec<_>>()});
    let body = assert_openai_error(
        post(&app, &token, "/v1/chat/completions", &too_long).await,
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(body["error"]["code"], "context_length_exceeded");

    let mut streamed = hello();
    streamed["stream"] = json!(true);
    assert_openai_error(
        post(&app, &token, "/v1/chat/completions", &streamed).await,
        502,
        "api_error",
    )
    .await;
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_an_openai_error_event() {
    let (app, _mock, token) = app_with_mock(Reply::CutAfter(&["Hel"])).await;
    let mut request = hello();
    request["stream"] = json!(true);

    let events = sse_data(post(&app, &token, "/v1/chat/completions", &request).await).await;

    assert_eq!(events[1]["choices"][0]["delta"]["content"], "Hel");
    let last = events.last().unwrap();
    assert_eq!(last["error"]["type"], "api_error", "{events:?}");
    assert!(!events.contains(&json!("[DONE]")));
}

#[tokio::test]
async fn embeddings_accept_a_string_or_a_list_and_answer_in_openai_shape() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;

    let one: Value = post(
        &app,
        &token,
        "/v1/embeddings",
        &json!({"input": "hello world"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(one["object"], "list");
    assert_eq!(one["model"], app.state.embedder.model());
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(one["data"][0]["object"], "embedding");
    assert_eq!(one["data"][0]["index"], 0);
    let vector = one["data"][0]["embedding"].as_array().unwrap();
    assert_eq!(vector.len(), app.state.embedder.dimension());
    assert_eq!(one["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));

    let many: Value = post(
        &app,
        &token,
        "/v1/embeddings",
        &json!({"input": ["a", "hello world"], "model": app.state.embedder.model()}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(many["data"][1]["index"], 1);
    assert_eq!(
        many["data"][1]["embedding"], one["data"][0]["embedding"],
        "same text, same vector"
    );

    let encoded: Value = post(
        &app,
        &token,
        "/v1/embeddings",
        &json!({"input": "hello world", "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let base64 = encoded["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(base64.len(), (vector.len() * 4).div_ceil(3) * 4);

    for (body, param) in [
        (json!({"input": []}), "input"),
        (json!({"input": ["ok", ""]}), "input[1]"),
        (
            json!({"input": "x", "encoding_format": "int8"}),
            "encoding_format",
        ),
    ] {
        let body = assert_openai_error(
            post(&app, &token, "/v1/embeddings", &body).await,
            422,
            "invalid_request_error",
        )
        .await;
        assert_eq!(body["error"]["param"], param);
    }
    let remote = post(
        &app,
        &token,
        "/v1/embeddings",
        &json!({"input": "x", "model": "text-embedding-3-small"}),
    )
    .await;
    assert_openai_error(remote, 503, "api_error").await;
}
