//! Shared helpers for the provider tests: real HTTP mock servers on 127.0.0.1:0 and the
//! streaming bodies they answer with (whole, cut mid-way, or held open until dropped).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::oneshot;

use super::http::{LlmHttp, RetryPolicy};
use super::{
    AnswerOptions, ChatMessage, CompletionRequest, FinishReason, LlmProvider, ProviderError, Role,
    StreamEvent, Tool, ToolCall, ToolCallDelta, Usage,
};

/// Serves `router` on a fresh local port and returns its base URL (`http://127.0.0.1:PORT`).
/// The listener is bound before this returns, so requests never race the server start.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// Retries without real waiting, so retry tests stay fast.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(2),
    }
}

/// A client with generous limits for happy-path tests.
pub fn http() -> LlmHttp {
    http_with_timeouts(Duration::from_secs(10), Duration::from_secs(5))
}

pub fn http_with_timeouts(timeout: Duration, idle_timeout: Duration) -> LlmHttp {
    LlmHttp::new(timeout, idle_timeout, fast_retries()).unwrap()
}

/// Every event of `provider`'s stream answering "Hi" with `model`; each must be `Ok`.
pub async fn streamed(provider: &dyn LlmProvider, model: &str) -> Vec<StreamEvent> {
    streamed_answer(provider, &user_request(model, "Hi")).await
}

/// Every event of `provider`'s stream answering `request`; each must be `Ok`.
pub async fn streamed_answer(
    provider: &dyn LlmProvider,
    request: &CompletionRequest,
) -> Vec<StreamEvent> {
    let stream = provider.stream(request).await.unwrap();
    stream.map(Result::unwrap).collect().await
}

/// Every item of `provider`'s stream answering "Hi" with `model`, errors included; the
/// stream itself must start.
pub async fn stream_results(
    provider: &dyn LlmProvider,
    model: &str,
) -> Vec<Result<StreamEvent, ProviderError>> {
    provider
        .stream(&user_request(model, "Hi"))
        .await
        .unwrap()
        .collect()
        .await
}

/// The events of a stream that said "Hel", "lo", then stopped with `usage`.
pub fn hello_events(usage: Usage) -> [StreamEvent; 3] {
    [
        StreamEvent::Token("Hel".into()),
        StreamEvent::Token("lo".into()),
        StreamEvent::Done {
            usage: Some(usage),
            finish: FinishReason::Stop,
        },
    ]
}

pub fn user_request(model: &str, question: &str) -> CompletionRequest {
    CompletionRequest {
        model: model.to_owned(),
        messages: vec![
            ChatMessage::new(Role::System, "Be brief."),
            ChatMessage::new(Role::User, question),
        ]
        .into(),
        temperature: Some(0.2),
        max_tokens: 64,
        context: Vec::new(),
        options: AnswerOptions::default(),
    }
}

/// An assistant message calling `name` with `arguments` (a call with id `id`).
pub fn calling(id: &str, name: &str, arguments: &str) -> ChatMessage {
    let mut message = ChatMessage::new(Role::Assistant, "");
    message.tool_calls.push(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    });
    message
}

/// The result of the call `id`, as the client sends it back.
pub fn tool_result(id: &str, content: &str) -> ChatMessage {
    let mut message = ChatMessage::new(Role::Tool, content);
    message.tool_call_id = Some(id.into());
    message
}

/// [`user_request`] followed by a call to `get_weather` for Paris (id `call_1`) and the
/// call's `result`.
pub fn tool_round_trip(model: &str, result: &str) -> CompletionRequest {
    let mut req = user_request(model, "Weather in Paris?");
    let mut messages = req.messages.to_vec();
    messages.extend([
        calling("call_1", "get_weather", r#"{"city":"Paris"}"#),
        tool_result("call_1", result),
    ]);
    req.messages = messages.into();
    req
}

/// A tool the tests offer: `name`, described, without a parameter schema.
pub fn tool(name: &str) -> Tool {
    Tool {
        name: name.into(),
        description: Some(format!("the {name} tool")),
        parameters: None,
        strict: None,
    }
}

/// A piece of a streamed tool call.
pub fn call_piece(
    index: u32,
    id: Option<&str>,
    name: Option<&str>,
    arguments: &str,
) -> StreamEvent {
    StreamEvent::ToolCall(ToolCallDelta {
        index,
        id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        arguments: arguments.to_owned(),
    })
}

/// Each request's headers and JSON body, as the mock received them.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<(HeaderMap, serde_json::Value)>>>);

impl Captured {
    pub fn record(&self, headers: &HeaderMap, body: &Bytes) {
        let json = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        self.0.lock().unwrap().push((headers.clone(), json));
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn last(&self) -> (HeaderMap, serde_json::Value) {
        self.0
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no request reached the mock")
    }
}

fn streaming(content_type: &'static str, body: Body) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// SSE frames (`event:`/`data:` text, blank-line terminated) sent in full.
pub fn sse(frames: Vec<String>) -> Response {
    streaming("text/event-stream", Body::from_stream(chunks(frames)))
}

/// NDJSON lines sent in full.
pub fn ndjson(lines: Vec<String>) -> Response {
    let lines = lines.into_iter().map(|line| format!("{line}\n")).collect();
    streaming("application/x-ndjson", Body::from_stream(chunks(lines)))
}

/// `data:` frame for a JSON payload.
pub fn data(json: serde_json::Value) -> String {
    format!("data: {json}\n\n")
}

fn chunks(parts: Vec<String>) -> impl Stream<Item = Result<Bytes, Infallible>> {
    futures::stream::iter(parts.into_iter().map(|part| Ok(Bytes::from(part))))
}

/// Sends `parts`, then breaks the connection: the way a provider crash looks on the wire.
/// The break comes a moment later so the parts are on the wire first, as in a real crash.
pub fn cut_after(content_type: &'static str, parts: Vec<String>) -> Response {
    let broken = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Err(std::io::Error::other("provider crashed"))
    });
    let body = chunks(parts)
        .map(|part| part.map_err(std::io::Error::other))
        .chain(broken);
    streaming(content_type, Body::from_stream(body))
}

/// Sends `parts`, then keeps the connection open sending `keep_alive` (which the decoders
/// ignore) until the client goes away; `dropped` fires when the server drops the body.
pub fn hold_open(
    content_type: &'static str,
    parts: Vec<String>,
    keep_alive: &'static str,
    dropped: oneshot::Sender<()>,
) -> Response {
    let guard = DropSignal(Some(dropped));
    let ticks = tokio_stream_interval(Duration::from_millis(20)).map(move |()| {
        let _keep = &guard;
        Ok(Bytes::from_static(keep_alive.as_bytes()))
    });
    streaming(content_type, Body::from_stream(chunks(parts).chain(ticks)))
}

/// Sends `parts` one every `period`: a provider that is slow but never silent for longer.
pub fn paced(content_type: &'static str, parts: Vec<String>, period: Duration) -> Response {
    let paced = chunks(parts)
        .zip(tokio_stream_interval(period))
        .map(|(part, ())| part);
    streaming(content_type, Body::from_stream(paced))
}

/// Sends `parts`, then goes silent with the connection open: a stalled provider.
pub fn stall_after(content_type: &'static str, parts: Vec<String>) -> Response {
    let silence = futures::stream::pending();
    streaming(
        content_type,
        Body::from_stream(chunks(parts).chain(silence)),
    )
}

/// A response that never starts: the provider hangs.
pub async fn hang() -> Response {
    futures::future::pending::<()>().await;
    StatusCode::OK.into_response()
}

fn tokio_stream_interval(period: Duration) -> impl Stream<Item = ()> {
    futures::stream::unfold(tokio::time::interval(period), |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    })
}

/// Fires its sender when dropped, i.e. when the mock's response body is dropped because
/// the connection closed.
struct DropSignal(Option<oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(());
        }
    }
}
