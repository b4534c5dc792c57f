//! A real OpenAI-compatible chat server on 127.0.0.1:0 speaking the wire format exactly
//! (JSON completions, SSE chunks ending in `data: [DONE]`), with the failure a test asks for.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// What the mock answers every chat completion with.
#[derive(Clone)]
pub enum Reply {
    /// This text (streamed word by word), with usage 11 prompt / 7 completion tokens.
    Answer(&'static str),
    /// Like `Answer`, but cut at `max_tokens` (`finish_reason: "length"`).
    Truncated(&'static str),
    /// This status with an OpenAI error body.
    Status(u16),
    /// Never answers.
    Hang,
    /// Streams these words, then breaks the connection.
    CutAfter(&'static [&'static str]),
    /// Streams these words, then keeps the connection open until the client goes away.
    HoldOpen(&'static [&'static str]),
    /// Calls `get_weather` for Paris (id `call_weather`) and `get_time` without arguments
    /// (id `call_time`), with `finish_reason: "tool_calls"`; streamed as OpenAI streams
    /// calls: a first piece with id and name, then the arguments in pieces.
    ToolCalls,
    /// Declines a structured answer: `content: null` and `refusal` (streamed as
    /// `delta.refusal` pieces), as OpenAI does under `response_format: json_schema`.
    Refuses,
}

/// The mock's refusal, for [`Reply::Refuses`].
pub const REFUSAL: &str = "I can't help with that.";

pub const PROMPT_TOKENS: u32 = 11;
pub const COMPLETION_TOKENS: u32 = 7;

#[derive(Clone)]
pub struct LlmMock {
    pub base_url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    /// Notified when a held-open stream's body is dropped: the client's connection closed.
    pub dropped: Arc<Notify>,
}

impl LlmMock {
    pub async fn start(reply: Reply) -> Self {
        let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
        let dropped = Arc::new(Notify::new());
        let (seen, signal) = (requests.clone(), dropped.clone());
        let router = Router::new()
            .route(
                "/v1/chat/completions",
                post(move |Json(body): Json<Value>| {
                    seen.lock().unwrap().push(body.clone());
                    let (reply, signal) = (reply.clone(), signal.clone());
                    async move { answer(reply, &body, signal).await }
                }),
            )
            .route(
                "/v1/models",
                get(|| async {
                    Json(json!({"object": "list", "data": [
                        {"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "openai"}
                    ]}))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            base_url: format!("http://{address}/v1"),
            requests,
            dropped,
        }
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    /// Settings that make this mock ragd's OpenAI-compatible provider (no retries, so
    /// failure tests stay quick), plus `extra`.
    pub fn settings<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut settings = vec![
            ("OPENAI_BASE_URL", self.base_url.as_str()),
            ("OPENAI_API_KEY", "sk-test"),
            ("DEFAULT_MODEL", "gpt-4o-mini"),
            ("LLM_MAX_RETRIES", "0"),
        ];
        settings.extend_from_slice(extra);
        settings
    }
}

async fn answer(reply: Reply, body: &Value, dropped: Arc<Notify>) -> Response {
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    let streamed = body["stream"] == true;
    let finish = if matches!(reply, Reply::Truncated(_)) {
        "length"
    } else {
        "stop"
    };
    match reply {
        Reply::Answer(text) | Reply::Truncated(text) if !streamed => Json(json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
        }))
        .into_response(),
        Reply::Answer(text) | Reply::Truncated(text) => {
            let mut frames: Vec<String> = words(text).map(|word| chunk(&model, &word)).collect();
            frames.push(format!(
                "data: {}\n\n",
                json!({"object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            ));
            frames.push(format!(
                "data: {}\n\n",
                json!({"object": "chat.completion.chunk", "model": model, "choices": [],
                    "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}})
            ));
            frames.push("data: [DONE]\n\n".to_owned());
            sse(futures::stream::iter(frames.into_iter().map(Ok)))
        }
        Reply::ToolCalls if !streamed => Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                "content": null, "tool_calls": [
                    {"id": "call_weather", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_time", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                ]}}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
        }))
        .into_response(),
        Reply::ToolCalls => {
            let piece = |calls: Value, finish: Value| {
                format!(
                    "data: {}\n\n",
                    json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1,
                        "model": model, "choices": [{"index": 0, "delta": {"tool_calls": calls},
                        "finish_reason": finish}]})
                )
            };
            let frames = vec![
                piece(
                    json!([{"index": 0, "id": "call_weather", "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}]),
                    Value::Null,
                ),
                piece(json!([{"index": 0, "function": {"arguments": "{\"city\":"}}]), Value::Null),
                piece(json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}]), Value::Null),
                piece(
                    json!([{"index": 1, "id": "call_time", "type": "function",
                        "function": {"name": "get_time", "arguments": "{}"}}]),
                    Value::Null,
                ),
                piece(json!([]), json!("tool_calls")),
                format!(
                    "data: {}\n\n",
                    json!({"object": "chat.completion.chunk", "model": model, "choices": [],
                        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}})
                ),
                "data: [DONE]\n\n".to_owned(),
            ];
            sse(futures::stream::iter(frames.into_iter().map(Ok)))
        }
        Reply::Refuses if !streamed => Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": null, "refusal": REFUSAL}}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS}
        }))
        .into_response(),
        Reply::Refuses => {
            let piece = |delta: Value, finish: Value| {
                format!(
                    "data: {}\n\n",
                    json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1,
                        "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                )
            };
            let (first, rest) = REFUSAL.split_at(6);
            let frames = vec![
                piece(json!({"role": "assistant", "content": null, "refusal": ""}), Value::Null),
                piece(json!({"refusal": first}), Value::Null),
                piece(json!({"refusal": rest}), Value::Null),
                piece(json!({}), json!("stop")),
                "data: [DONE]\n\n".to_owned(),
            ];
            sse(futures::stream::iter(frames.into_iter().map(Ok)))
        }
        Reply::Status(status) => (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"error": {"message": "mock failure", "type": "server_error"}})),
        )
            .into_response(),
        Reply::Hang => {
            futures::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
        Reply::CutAfter(parts) => {
            let frames: Vec<_> = parts.iter().map(|p| Ok(chunk(&model, p))).collect();
            let broken = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(std::io::Error::other("provider crashed"))
            });
            let body = futures::stream::iter(frames).chain(broken);
            ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(body)).into_response()
        }
        Reply::HoldOpen(parts) => {
            let frames: Vec<_> = parts.iter().map(|p| Ok(chunk(&model, p))).collect();
            let guard = DropSignal(dropped);
            let ticks = futures::stream::unfold(
                tokio::time::interval(Duration::from_millis(50)),
                |mut interval| async move {
                    interval.tick().await;
                    Some((Ok(": keep-alive\n\n".to_owned()), interval))
                },
            )
            .map(move |tick| {
                let _held = &guard;
                tick
            });
            sse(futures::stream::iter(frames).chain(ticks))
        }
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_inclusive(' ').map(str::to_owned)
}

fn chunk(model: &str, content: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
    )
}

fn sse(frames: impl Stream<Item = Result<String, Infallible>> + Send + 'static) -> Response {
    let body = Body::from_stream(frames.map(|frame| frame.map(Bytes::from)));
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

struct DropSignal(Arc<Notify>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}
