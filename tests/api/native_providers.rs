//! Anthropic and Ollama through ragd's own chat routes, against real HTTP servers speaking each
//! provider's native wire format: the model name routes the call, the system prompt lands
//! where each API wants it, and answers stream through unchanged.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::chat::{post as post_json, sse_data};
use crate::helpers::{Backend, TestApp, signed_up, spawn_app_with};

/// The request bodies a mock provider received.
pub type Seen = Arc<Mutex<Vec<Value>>>;

/// A ragd whose provider is the mock at `base_url` (`ANTHROPIC_BASE_URL` or
/// `OLLAMA_BASE_URL`, named by `variable`), and a user's token.
pub async fn app_with_native(variable: &str, base_url: &str) -> (TestApp, String) {
    let mut settings = vec![(variable, base_url)];
    if variable == "ANTHROPIC_BASE_URL" {
        settings.push(("ANTHROPIC_API_KEY", "sk-ant-test"));
    }
    let app = spawn_app_with(Backend::Sqlite, &settings).await.unwrap();
    let token = signed_up(&app, "ada@example.com").await;
    (app, token)
}

/// Serves `router` on a free loopback port; returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

pub fn body_of(content_type: &'static str, text: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], Body::from(text)).into_response()
}

/// Anthropic's Messages API: a whole message, or its SSE event sequence.
async fn anthropic(seen: Seen) -> String {
    let router = Router::new().route(
        "/v1/messages",
        post(move |axum::Json(body): axum::Json<Value>| {
            seen.lock().unwrap().push(body.clone());
            async move {
                if body["stream"] != true {
                    return axum::Json(json!({
                        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
                        "content": [{"type": "text", "text": "Bonjour from Claude"}],
                        "stop_reason": "end_turn", "usage": {"input_tokens": 21, "output_tokens": 4}
                    }))
                    .into_response();
                }
                let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
                let text = [
                    event("message_start", json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                        "role": "assistant", "content": [], "model": "claude-3-5-haiku-20241022",
                        "usage": {"input_tokens": 21, "output_tokens": 1}}})),
                    event("content_block_start", json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "text", "text": ""}})),
                    event("content_block_delta", json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": "Bonjour "}})),
                    event("content_block_delta", json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": "from Claude"}})),
                    event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                    event("message_delta", json!({"type": "message_delta",
                        "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}})),
                    event("message_stop", json!({"type": "message_stop"})),
                ]
                .concat();
                body_of("text/event-stream", text)
            }
        }),
    );
    serve(router).await
}

/// Ollama's native `/api/chat`: one JSON object, or NDJSON lines ending with `done: true`.
async fn ollama(seen: Seen) -> String {
    let router = Router::new().route(
        "/api/chat",
        post(move |axum::Json(body): axum::Json<Value>| {
            seen.lock().unwrap().push(body.clone());
            async move {
                let done = json!({"model": "llama3.2", "message": {"role": "assistant", "content": ""},
                    "done": true, "done_reason": "stop", "prompt_eval_count": 17, "eval_count": 3});
                if body["stream"] == false {
                    let mut whole = done;
                    whole["message"]["content"] = json!("Hello from llama");
                    return axum::Json(whole).into_response();
                }
                let line = |content: &str| {
                    json!({"model": "llama3.2", "message": {"role": "assistant", "content": content}, "done": false})
                        .to_string()
                        + "\n"
                };
                let text = [line("Hello "), line("from llama"), done.to_string() + "\n"].concat();
                body_of("application/x-ndjson", text)
            }
        }),
    );
    serve(router).await
}

fn question(model: &str) -> Value {
    json!({"model": model, "use_rag": false, "messages": [
        {"role": "system", "content": "Answer in one line."},
        {"role": "user", "content": "Say hello"}
    ]})
}

fn streamed_text(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|event| event["token"].as_str())
        .collect()
}

#[tokio::test]
async fn claude_models_answer_through_anthropics_messages_api() {
    let seen = Seen::default();
    let base_url = anthropic(seen.clone()).await;
    let (app, token) = app_with_native("ANTHROPIC_BASE_URL", &base_url).await;

    let whole: Value = post_json(&app, &token, "/api/v1/chat", &question("claude-3-5-haiku"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["response"], "Bonjour from Claude", "{whole}");
    assert_eq!(whole["provider"], "anthropic");
    assert_eq!(whole["usage"]["prompt_tokens"], 21);
    assert_eq!(whole["usage"]["completion_tokens"], 4);
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["system"], "Answer in one line.", "{sent}");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Say hello"}])
    );

    let events = sse_data(
        post_json(
            &app,
            &token,
            "/api/v1/chat/stream",
            &question("anthropic/claude-3-5-haiku"),
        )
        .await,
    )
    .await;
    assert_eq!(streamed_text(&events), "Bonjour from Claude");
    let done = events.last().unwrap();
    assert_eq!(done["done"], true, "{events:?}");
    assert_eq!(done["provider"], "anthropic");
    assert_eq!(done["usage"]["completion_tokens"], 4);
}

#[tokio::test]
async fn ollama_models_answer_through_ollamas_native_chat_api() {
    let seen = Seen::default();
    let base_url = ollama(seen.clone()).await;
    let (app, token) = app_with_native("OLLAMA_BASE_URL", &base_url).await;

    let whole: Value = post_json(&app, &token, "/api/v1/chat", &question("ollama/llama3.2"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(whole["response"], "Hello from llama", "{whole}");
    assert_eq!(whole["provider"], "ollama");
    assert_eq!(whole["usage"]["prompt_tokens"], 17);
    assert_eq!(whole["usage"]["completion_tokens"], 3);
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["model"], "llama3.2", "the ollama/ prefix only routes");
    assert_eq!(sent["messages"][0]["role"], "system");

    let events = sse_data(
        post_json(
            &app,
            &token,
            "/api/v1/chat/stream",
            &question("ollama/llama3.2"),
        )
        .await,
    )
    .await;
    assert_eq!(streamed_text(&events), "Hello from llama");
    assert_eq!(events.last().unwrap()["provider"], "ollama");
}
