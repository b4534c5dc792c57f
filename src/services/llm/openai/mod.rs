//! The OpenAI-compatible provider: chat completions (whole and SSE-streamed, tool calls
//! included), the model list and embeddings, against any server that speaks OpenAI's API.

mod request;

use async_trait::async_trait;
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::request::ChatBody;

use super::framing::{Frame, decode_events_to_end, sse_events};
use super::http::{Endpoint, LlmHttp, Upstream, safe_message};
use super::tools::{self, written};
use super::{
    Completion, CompletionRequest, EmbeddingOutput, EventStream, FinishReason, LlmProvider,
    ModelInfo, ProviderError, RemoteEmbedder, StreamEvent, ToolCall, ToolCallDelta, Usage, tokens,
};
use crate::secret::Secret;

const PROVIDER: &str = "openai";
/// The official API, which wants `max_completion_tokens` (its reasoning models reject
/// `max_tokens`), while other compatible servers often know only `max_tokens`.
const OFFICIAL_HOST: &str = "api.openai.com";

pub struct OpenAiProvider {
    http: LlmHttp,
    base_url: String,
    chat: Endpoint,
    embeddings: Endpoint,
    api_key: Option<Secret>,
    official: bool,
}

impl OpenAiProvider {
    pub fn new(http: LlmHttp, base_url: &str, api_key: Option<Secret>) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            official: base_url.contains(OFFICIAL_HOST),
            chat: Endpoint::new(format!("{base_url}/chat/completions")),
            embeddings: Endpoint::new(format!("{base_url}/embeddings")),
            http,
            base_url,
            api_key,
        }
    }

    fn request(&self, builder: RequestBuilder) -> RequestBuilder {
        match &self.api_key {
            Some(key) => builder.bearer_auth(key.expose()),
            None => builder,
        }
    }

    async fn post_chat(
        &self,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<Upstream, ProviderError> {
        let builder = self
            .request(self.chat.post(self.http.client()))
            .json(&ChatBody::new(req, stream, self.official));
        self.http.send(PROVIDER, builder).await
    }
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

impl From<WireUsage> for Usage {
    fn from(wire: WireUsage) -> Self {
        Usage::new(wire.prompt_tokens, wire.completion_tokens)
    }
}

#[derive(Deserialize)]
struct ChatResponse {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    /// Missing from some compatible servers' answers: ragd then makes one up.
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Arguments>,
}

/// A call's arguments: the JSON text OpenAI sends, or (from some compatible servers) the
/// JSON object itself.
#[derive(Deserialize)]
#[serde(untagged)]
enum Arguments {
    Text(String),
    Object(Value),
}

impl Arguments {
    fn into_text(self) -> String {
        match self {
            Self::Text(text) => text,
            Self::Object(value) => value.to_string(),
        }
    }
}

impl WireToolCall {
    fn into_call(self) -> ToolCall {
        ToolCall {
            id: self
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(tools::new_call_id),
            name: self.function.name.unwrap_or_default(),
            arguments: self
                .function
                .arguments
                .map(Arguments::into_text)
                .unwrap_or_default(),
        }
    }
}

/// One chunk, read as leniently as the servers that speak OpenAI's API write them: `choices`
/// may be missing or `null` (a usage-only chunk), and so may a choice's `delta` (a last
/// chunk carrying only its `finish_reason`).
#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCallDelta>>,
}

#[derive(Deserialize)]
struct WireToolCallDelta {
    /// Missing when a server sends each call whole, in one chunk: then calls are numbered
    /// in the order they arrive.
    index: Option<u32>,
    id: Option<String>,
    function: Option<WireFunctionDelta>,
}

#[derive(Deserialize)]
struct WireFunctionDelta {
    name: Option<String>,
    arguments: Option<Arguments>,
}

/// An error some compatible servers send inside a stream that already answered 200.
#[derive(Deserialize)]
struct WireError {
    message: Option<String>,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<WireModel>,
}

#[derive(Deserialize)]
struct WireModel {
    id: String,
    owned_by: Option<String>,
}

#[derive(Serialize)]
struct EmbeddingBody<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
    usage: Option<EmbeddingUsage>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct EmbeddingUsage {
    prompt_tokens: u32,
}

fn protocol(message: impl Into<String>) -> ProviderError {
    ProviderError::Protocol {
        provider: PROVIDER,
        message: message.into(),
    }
}

/// What a stream has reported so far that only matters at its end.
#[derive(Default)]
struct StreamEnd {
    /// The tool calls begun so far, by index and id, in the order they began.
    calls: Vec<(u32, String)>,
    usage: Option<Usage>,
    finish: FinishReason,
    /// A choice said why it finished: the answer is whole even if `[DONE]` never comes (some
    /// compatible servers just close the stream).
    finished: bool,
}

/// Decodes one SSE `data:` payload of a chat completion stream; `None` when the stream ended.
fn decode_chunk(data: Option<&str>, end: &mut StreamEnd) -> Result<Frame, ProviderError> {
    let Some(data) = data else {
        return if end.finished {
            Ok(end.done())
        } else {
            Err(ProviderError::StreamCut { provider: PROVIDER })
        };
    };
    if data.trim() == "[DONE]" {
        return Ok(end.done());
    }
    let chunk: ChatChunk = serde_json::from_str(data)
        .map_err(|error| protocol(format!("invalid stream chunk: {error}")))?;
    if let Some(error) = chunk.error {
        return Err(ProviderError::Upstream {
            provider: PROVIDER,
            status: 200,
            message: error.message.map_or_else(
                || "error inside the stream".to_owned(),
                |message| safe_message(&message),
            ),
        });
    }
    if let Some(reported) = chunk.usage {
        end.usage = Some(reported.into());
    }
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut refusals = Vec::new();
    for choice in chunk.choices.into_iter().flatten() {
        if let Some(reason) = choice.finish_reason.as_deref() {
            end.finish = FinishReason::from_provider(Some(reason));
            end.finished = true;
        }
        let Some(delta) = choice.delta else { continue };
        match delta.content {
            Some(content) if text.is_empty() => text = content,
            Some(content) => text.push_str(&content),
            None => {}
        }
        for call in delta.tool_calls.into_iter().flatten() {
            calls.push(end.call_delta(call));
        }
        if let Some(refusal) = delta.refusal.filter(|refusal| !refusal.is_empty()) {
            refusals.push(StreamEvent::Refusal(refusal));
        }
    }
    if !refusals.is_empty() {
        let text = (!text.is_empty()).then_some(StreamEvent::Token(text));
        let calls = calls.into_iter().map(StreamEvent::ToolCall);
        return Ok(Frame::Events(
            text.into_iter().chain(calls).chain(refusals).collect(),
        ));
    }
    Ok(match (text.is_empty(), calls.len()) {
        (true, 0) => Frame::Ignore,
        (false, 0) => Frame::Token(text),
        (true, 1) => calls.pop().map_or(Frame::Ignore, Frame::ToolCall),
        (text_is_empty, _) => {
            let text = (!text_is_empty).then_some(StreamEvent::Token(text));
            Frame::Events(
                text.into_iter()
                    .chain(calls.into_iter().map(StreamEvent::ToolCall))
                    .collect(),
            )
        }
    })
}

impl StreamEnd {
    fn done(&mut self) -> Frame {
        let finish = self.finish.with_calls(!self.calls.is_empty());
        Frame::Done(self.usage.take(), finish)
    }

    /// A piece of a call in ragd's terms. Servers that speak OpenAI's API loosely leave out
    /// the index (a piece without one continues the last call, unless it brings an id of its
    /// own) or the id (one is made up for the call's first piece, as clients need it to send
    /// the result back).
    fn call_delta(&mut self, call: WireToolCallDelta) -> ToolCallDelta {
        let mut id = call.id.filter(|id| !id.is_empty());
        let index = match (call.index, self.calls.last()) {
            (Some(index), _) => index,
            (None, Some((last, last_id))) if id.as_ref().is_none_or(|id| id == last_id) => *last,
            (None, _) => u32::try_from(self.calls.len()).unwrap_or(u32::MAX),
        };
        if !self.calls.iter().any(|(begun, _)| *begun == index) {
            let new_id = id.unwrap_or_else(tools::new_call_id);
            self.calls.push((index, new_id.clone()));
            id = Some(new_id);
        }
        let (name, arguments) = call
            .function
            .map_or((None, None), |function| (function.name, function.arguments));
        ToolCallDelta {
            index,
            id,
            name,
            arguments: arguments.map(Arguments::into_text).unwrap_or_default(),
        }
    }
}

#[async_trait]
impl LlmProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let response: ChatResponse = self.post_chat(req, false).await?.json().await?;
        let choice = response
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| protocol("the answer has no choices"))?;
        let text = choice.message.content.unwrap_or_default();
        let tool_calls: Vec<ToolCall> = choice
            .message
            .tool_calls
            .into_iter()
            .flatten()
            .map(WireToolCall::into_call)
            .collect();
        let finish = FinishReason::from_provider(choice.finish_reason.as_deref())
            .with_calls(!tool_calls.is_empty());
        let refusal = choice.message.refusal.filter(|refusal| !refusal.is_empty());
        let usage = match response.usage {
            Some(usage) => usage.into(),
            None => {
                let written = written(&text, &tool_calls);
                req.estimate_usage(&format!(
                    "{written}{}",
                    refusal.as_deref().unwrap_or_default()
                ))
            }
        };
        Ok(Completion {
            text,
            tool_calls,
            refusal,
            usage,
            model: response.model.unwrap_or_else(|| req.model.clone()),
            finish,
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError> {
        let upstream = self.post_chat(req, true).await?;
        let events = sse_events(PROVIDER, upstream.into_chunks());
        let mut end = StreamEnd::default();
        Ok(decode_events_to_end(events, move |event| {
            decode_chunk(event.as_ref().map(|event| event.data.as_str()), &mut end)
        }))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let url = format!("{}/models", self.base_url);
        let builder = self.request(self.http.client().get(url));
        let list: ModelList = self.http.send(PROVIDER, builder).await?.json().await?;
        Ok(list
            .data
            .into_iter()
            .map(|model| ModelInfo {
                id: model.id,
                owned_by: model.owned_by.unwrap_or_else(|| PROVIDER.to_owned()),
            })
            .collect())
    }
}

#[async_trait]
impl RemoteEmbedder for OpenAiProvider {
    async fn embed(
        &self,
        model: &str,
        inputs: &[String],
    ) -> Result<EmbeddingOutput, ProviderError> {
        let body = EmbeddingBody {
            model,
            input: inputs,
            encoding_format: "float",
        };
        let builder = self
            .request(self.embeddings.post(self.http.client()))
            .json(&body);
        let response: EmbeddingResponse = self.http.send(PROVIDER, builder).await?.json().await?;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
        for item in response.data {
            let slot = vectors
                .get_mut(item.index)
                .ok_or_else(|| protocol(format!("embedding index {} out of range", item.index)))?;
            *slot = Some(item.embedding);
        }
        let vectors = vectors
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| protocol("an input got no embedding"))?;
        let prompt_tokens = match response.usage {
            Some(usage) => usage.prompt_tokens,
            None => inputs
                .iter()
                .map(|input| tokens::count_text(model, input))
                .fold(0, u32::saturating_add),
        };
        Ok(EmbeddingOutput {
            vectors,
            prompt_tokens,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::Json;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use bytes::Bytes;
    use futures::StreamExt;
    use serde_json::json;
    use tokio::sync::oneshot;

    use super::*;
    use crate::services::llm::StreamEvent;
    use crate::services::llm::test_support::*;

    fn provider(base_url: &str) -> OpenAiProvider {
        OpenAiProvider::new(http(), base_url, Some(Secret::new("sk-test")))
    }

    fn chunk(content: &str) -> String {
        data(
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]}),
        )
    }

    fn usage_chunk() -> String {
        data(
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}}),
        )
    }

    async fn mock_chat(
        answer: impl Fn() -> Response + Clone + Send + Sync + 'static,
    ) -> (String, Captured) {
        let captured = Captured::default();
        let seen = captured.clone();
        let router = Router::new().route(
            "/v1/chat/completions",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                let response = answer();
                async move { response }
            }),
        );
        (format!("{}/v1", serve(router).await), captured)
    }

    #[tokio::test]
    async fn complete_sends_the_openai_request_and_maps_answer_and_usage() {
        let (base_url, captured) = mock_chat(|| {
            Json(json!({"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}))
            .into_response()
        })
        .await;

        let completion = provider(&base_url)
            .complete(&user_request("gpt-4o-mini", "Hi"))
            .await
            .unwrap();

        assert_eq!(completion.text, "Hello!");
        assert_eq!(completion.usage, Usage::new(9, 3));
        assert_eq!(completion.model, "gpt-4o-mini-2024");
        let (headers, body) = captured.last();
        assert_eq!(headers["authorization"], "Bearer sk-test");
        assert_eq!(body["model"], "gpt-4o-mini");
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "Hi"})
        );
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["stream"], false);
        assert!(body.get("stream_options").is_none());
    }

    #[tokio::test]
    async fn tool_calls_of_a_whole_answer_are_read_with_their_finish_reason() {
        let (base_url, _) = mock_chat(|| {
            Json(json!({"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                    "content": null, "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"type": "function", "function": {"name": "get_time", "arguments": {"zone": "CET"}}}
                    ]}}],
                "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}}))
            .into_response()
        })
        .await;

        let completion = provider(&base_url)
            .complete(&user_request("gpt-4o-mini", "Weather?"))
            .await
            .unwrap();

        assert_eq!(completion.text, "");
        assert_eq!(completion.finish, FinishReason::ToolCalls);
        assert_eq!(completion.tool_calls.len(), 2);
        assert_eq!(
            completion.tool_calls[0],
            ToolCall {
                id: "call_a".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }
        );
        // A server that sends no id and the arguments as an object still gives a usable call.
        let second = &completion.tool_calls[1];
        assert!(second.id.starts_with("call_"), "{second:?}");
        assert_eq!(
            (second.name.as_str(), second.arguments.as_str()),
            ("get_time", r#"{"zone":"CET"}"#)
        );
    }

    #[tokio::test]
    async fn streamed_tool_calls_arrive_as_pieces_with_their_index() {
        let (base_url, _) = mock_chat(|| {
            let piece = |calls: Value| {
                data(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": null}]}))
            };
            let finish = data(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}));
            sse(vec![
                piece(json!([{"index": 0, "id": "call_a", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}])),
                piece(json!([{"index": 0, "function": {"arguments": "{\"city\":"}}])),
                piece(json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}},
                    {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}])),
                finish,
                usage_chunk(),
                "data: [DONE]\n\n".into(),
            ])
        })
        .await;

        let events = streamed(&provider(&base_url), "gpt-4o-mini").await;

        assert_eq!(
            events,
            [
                call_piece(0, Some("call_a"), Some("get_weather"), ""),
                call_piece(0, None, None, "{\"city\":"),
                call_piece(0, None, None, "\"Paris\"}"),
                call_piece(1, Some("call_b"), Some("get_time"), "{}"),
                StreamEvent::Done {
                    usage: Some(Usage::new(12, 2)),
                    finish: FinishReason::ToolCalls
                },
            ]
        );
    }

    #[tokio::test]
    async fn calls_from_loose_servers_get_an_id_an_index_and_the_tool_calls_reason() {
        let (base_url, _) = mock_chat(|| {
            let piece = |calls: Value, finish: Value| {
                data(json!({"object": "chat.completion.chunk", "model": "m",
                    "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": finish}]}))
            };
            sse(vec![
                // No id (or an empty one), no index: servers that speak OpenAI's API loosely.
                piece(json!([{"id": "", "function": {"name": "get_weather", "arguments": "{\"city\""}}]), Value::Null),
                piece(json!([{"function": {"arguments": ":\"Paris\"}"}}]), Value::Null),
                piece(json!([{"id": "call_b", "function": {"name": "get_time", "arguments": "{}"}}]), Value::Null),
                piece(json!([{"id": "call_b", "function": {"arguments": ""}}]), json!("stop")),
                "data: [DONE]\n\n".into(),
            ])
        })
        .await;

        let events = streamed(&provider(&base_url), "m").await;

        let pieces: Vec<&ToolCallDelta> = events
            .iter()
            .filter_map(|event| match event {
                StreamEvent::ToolCall(delta) => Some(delta),
                _ => None,
            })
            .collect();
        let indexes: Vec<u32> = pieces.iter().map(|piece| piece.index).collect();
        assert_eq!(indexes, [0, 0, 1, 1]);
        let made_up = pieces[0].id.as_deref().unwrap();
        assert!(
            made_up.starts_with("call_") && made_up.len() > 5,
            "{made_up}"
        );
        assert_eq!(
            pieces[1].id, None,
            "only a call's first piece carries its id"
        );
        assert_eq!(pieces[2].id.as_deref(), Some("call_b"));
        assert!(matches!(
            events.last(),
            Some(StreamEvent::Done {
                finish: FinishReason::ToolCalls,
                ..
            })
        ));

        let (base_url, _) = mock_chat(|| {
            Json(json!({"model": "m", "choices": [{"finish_reason": "stop", "message": {"content": null,
                "tool_calls": [{"id": "", "function": {"name": "get_time", "arguments": "{}"}}]}}]}))
            .into_response()
        })
        .await;
        let whole = provider(&base_url)
            .complete(&user_request("m", "Time?"))
            .await
            .unwrap();
        assert_eq!(whole.finish, FinishReason::ToolCalls);
        assert!(whole.tool_calls[0].id.starts_with("call_"), "{whole:?}");
    }

    #[tokio::test]
    async fn stream_yields_tokens_then_done_with_the_reported_usage() {
        let (base_url, captured) = mock_chat(|| {
            let role = data(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}));
            sse(vec![role, chunk("Hel"), chunk("lo"), usage_chunk(), "data: [DONE]\n\n".into()])
        })
        .await;

        let events = streamed(&provider(&base_url), "gpt-4o-mini").await;

        assert_eq!(events, hello_events(Usage::new(12, 2)));
        let (_, body) = captured.last();
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }

    #[tokio::test]
    async fn an_answer_cut_at_max_tokens_says_so_whole_and_streamed() {
        let (base_url, _) = mock_chat(|| {
            Json(json!({"model": "m", "choices": [{"index": 0, "message": {"content": "Hel"}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}))
            .into_response()
        })
        .await;
        let completion = provider(&base_url)
            .complete(&user_request("gpt-4o-mini", "Hi"))
            .await
            .unwrap();
        assert_eq!(completion.finish, FinishReason::Length);

        let (base_url, _) = mock_chat(|| {
            let last = data(json!({"object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}));
            sse(vec![
                chunk("Hel"),
                last,
                usage_chunk(),
                "data: [DONE]\n\n".into(),
            ])
        })
        .await;
        let events = streamed(&provider(&base_url), "gpt-4o-mini").await;
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done {
                usage: Some(Usage::new(12, 2)),
                finish: FinishReason::Length,
            })
        );
    }

    #[tokio::test]
    async fn upstream_500_is_retried_then_reported_as_an_upstream_error() {
        let (base_url, captured) = mock_chat(|| {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": {"message": "The server had an error", "type": "server_error"}})))
                .into_response()
        })
        .await;

        let error = provider(&base_url)
            .complete(&user_request("gpt-4o-mini", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(&error, ProviderError::Upstream { provider: "openai", status: 500, message } if message == "The server had an error"),
            "{error:?}"
        );
        assert_eq!(captured.count(), 1 + fast_retries().max_retries as usize);
    }

    #[tokio::test]
    async fn a_429_with_retry_after_is_waited_out_and_retried() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let (base_url, _) = mock_chat(move || {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    Json(json!({"error": {"message": "slow down"}})),
                )
                    .into_response()
            } else {
                Json(
                    json!({"model": "m", "choices": [{"message": {"content": "ok"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
                )
                .into_response()
            }
        })
        .await;

        let completion = provider(&base_url)
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap();

        assert_eq!(completion.text, "ok");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_fails_fast_as_rate_limited() {
        let (base_url, captured) = mock_chat(|| {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "3600")], "").into_response()
        })
        .await;

        let error = provider(&base_url)
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(error, ProviderError::RateLimited { retry_after: Some(wait), .. } if wait == Duration::from_secs(3600))
        );
        assert_eq!(captured.count(), 1);
    }

    #[tokio::test]
    async fn malformed_json_is_a_protocol_error() {
        let (base_url, _) = mock_chat(|| "{\"choices\": [".into_response()).await;

        let error = provider(&base_url)
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(
                error,
                ProviderError::Protocol {
                    provider: "openai",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_hanging_provider_times_out() {
        let router = Router::new().route("/v1/chat/completions", post(hang));
        let base_url = format!("{}/v1", serve(router).await);
        let http = http_with_timeouts(Duration::from_millis(200), Duration::from_millis(200));
        let provider = OpenAiProvider::new(http, &base_url, None);

        let error = provider
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(error, ProviderError::Timeout { provider: "openai" }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_error_sent_inside_the_stream_is_summarized_without_credentials() {
        let (base_url, _) = mock_chat(|| {
            let error =
                json!({"error": {"message": "bad key sk-proj-SUPERSECRET0123456789abcdef"}});
            sse(vec![chunk("Hel"), data(error)])
        })
        .await;

        let events = stream_results(&provider(&base_url), "m").await;

        match events.last() {
            Some(Err(ProviderError::Upstream { message, .. })) => {
                assert_eq!(message, "bad key [redacted]");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_with_the_key() {
        let elsewhere = Captured::default();
        let seen = elsewhere.clone();
        let target = serve(Router::new().route(
            "/v1/chat/completions",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                async { StatusCode::OK }
            }),
        ))
        .await;
        let (base_url, _) = mock_chat(move || {
            let location = format!("{target}/v1/chat/completions");
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
                .into_response()
        })
        .await;

        let error = provider(&base_url)
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(error, ProviderError::Upstream { status: 307, .. }),
            "{error:?}"
        );
        assert_eq!(elsewhere.count(), 0);
    }

    #[tokio::test]
    async fn a_stream_cut_mid_way_ends_with_an_error() {
        let (base_url, _) =
            mock_chat(|| cut_after("text/event-stream", vec![chunk("Hel"), chunk("lo")])).await;

        let events = stream_results(&provider(&base_url), "m").await;

        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(events[0], Ok(StreamEvent::Token(_))));
        assert!(
            matches!(
                events[2],
                Err(ProviderError::StreamCut { provider: "openai" })
            ),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn chunks_without_choices_or_delta_are_read_as_compatible_servers_write_them() {
        let (base_url, _) = mock_chat(|| {
            sse(vec![
                chunk("Hel"),
                data(json!({"choices": [{"index": 0, "finish_reason": "stop"}]})),
                data(
                    json!({"choices": null, "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
                ),
                "data: [DONE]\n\n".to_owned(),
            ])
        })
        .await;

        let events = streamed(&provider(&base_url), "m").await;

        assert_eq!(
            events,
            [
                StreamEvent::Token("Hel".into()),
                StreamEvent::Done {
                    usage: Some(Usage::new(3, 1)),
                    finish: FinishReason::Stop
                }
            ]
        );
    }

    #[tokio::test]
    async fn a_stream_that_finished_is_whole_without_done() {
        let finished =
            data(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}));
        let (base_url, _) = mock_chat(move || sse(vec![chunk("Hel"), finished.clone()])).await;

        let events = streamed(&provider(&base_url), "m").await;

        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done {
                usage: None,
                finish: FinishReason::Length
            })
        );
    }

    #[tokio::test]
    async fn a_stream_closed_without_done_is_cut() {
        let (base_url, _) = mock_chat(|| sse(vec![chunk("Hel")])).await;

        let events = stream_results(&provider(&base_url), "m").await;

        assert!(
            matches!(events.last(), Some(Err(ProviderError::StreamCut { .. }))),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn a_stalled_stream_hits_the_idle_timeout() {
        let (base_url, _) =
            mock_chat(|| stall_after("text/event-stream", vec![chunk("Hel")])).await;
        let http = http_with_timeouts(Duration::from_secs(30), Duration::from_millis(200));
        let provider = OpenAiProvider::new(http, &base_url, None);

        let events = stream_results(&provider, "m").await;

        assert!(
            matches!(events.last(), Some(Err(ProviderError::Timeout { .. }))),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn the_idle_limit_runs_from_the_last_chunk_not_from_the_start() {
        // Six chunks 100 ms apart: 0.5 s in all, each gap well inside the 300 ms limit.
        let mut parts: Vec<String> = ["a", "b", "c", "d"].map(chunk).into();
        parts.extend([usage_chunk(), "data: [DONE]\n\n".to_owned()]);
        let (base_url, _) = mock_chat(move || {
            paced(
                "text/event-stream",
                parts.clone(),
                Duration::from_millis(100),
            )
        })
        .await;
        let http = http_with_timeouts(Duration::from_secs(30), Duration::from_millis(300));
        let provider = OpenAiProvider::new(http, &base_url, None);

        let events = stream_results(&provider, "m").await;

        assert_eq!(events.len(), 5, "{events:?}");
        assert!(
            matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn dropping_the_stream_closes_the_upstream_connection() {
        let (dropped_tx, dropped_rx) = oneshot::channel();
        let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
        let (base_url, _) = mock_chat(move || {
            let sender = dropped_tx.lock().unwrap().take().unwrap();
            hold_open(
                "text/event-stream",
                vec![chunk("Hel")],
                ": keep-alive\n\n",
                sender,
            )
        })
        .await;
        let mut stream = provider(&base_url)
            .stream(&user_request("m", "Hi"))
            .await
            .unwrap();
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            StreamEvent::Token("Hel".into())
        );

        drop(stream);

        tokio::time::timeout(Duration::from_secs(1), dropped_rx)
            .await
            .expect("the mock still streams to a client that went away")
            .unwrap();
    }

    #[tokio::test]
    async fn embeddings_come_back_in_input_order() {
        let captured = Captured::default();
        let seen = captured.clone();
        let router = Router::new().route(
            "/v1/embeddings",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                async {
                    Json(json!({"object": "list", "model": "text-embedding-3-small",
                        "data": [{"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
                                 {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}],
                        "usage": {"prompt_tokens": 5, "total_tokens": 5}}))
                }
            }),
        );
        let base_url = format!("{}/v1", serve(router).await);
        let inputs = vec!["first".to_owned(), "second".to_owned()];

        let output = provider(&base_url)
            .embed("text-embedding-3-small", &inputs)
            .await
            .unwrap();

        assert_eq!(output.vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(output.prompt_tokens, 5);
        assert_eq!(captured.last().1["input"], json!(["first", "second"]));
    }

    #[tokio::test]
    async fn models_are_listed_with_their_owner() {
        let router = Router::new().route(
            "/v1/models",
            get(|| async {
                Json(json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "system"}]}))
            }),
        );
        let base_url = format!("{}/v1", serve(router).await);

        let models = provider(&base_url).list_models().await.unwrap();

        assert_eq!(
            models,
            [ModelInfo {
                id: "gpt-4o-mini".into(),
                owned_by: "system".into()
            }]
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);

        let error = provider(&format!("http://{address}/v1"))
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(
                error,
                ProviderError::Connect {
                    provider: "openai",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
