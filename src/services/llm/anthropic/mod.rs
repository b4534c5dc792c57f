//! The Anthropic provider over the Messages API: the request takes Anthropic's shape (see
//! [`request`]), and the SSE event stream (`message_start`, `content_block_start`,
//! `content_block_delta`, `message_delta`, `message_stop`, `error`) becomes stream events,
//! text and tool calls alike.

mod request;

use async_trait::async_trait;
use reqwest::RequestBuilder;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::Value;

use self::request::{MessagesBody, answer_tool_name, check_answer_tool};
use super::framing::{Frame, decode_events, sse_events};
use super::http::{Endpoint, LlmHttp, Upstream, safe_message};
use super::{
    Completion, CompletionRequest, EventStream, FinishReason, LlmProvider, ModelInfo,
    ProviderError, ToolCall, ToolCallDelta, Usage,
};
use crate::secret::Secret;

const PROVIDER: &str = "anthropic";
const API_VERSION: &str = "2023-06-01";
/// Anthropic's "overloaded" status, used for an overload reported inside a stream.
const OVERLOADED_STATUS: u16 = 529;

pub struct AnthropicProvider {
    http: LlmHttp,
    base_url: String,
    messages: Endpoint,
    /// The key as a header value marked sensitive, so it never shows in debug output.
    api_key: HeaderValue,
}

impl AnthropicProvider {
    /// `base_url` is the API root, with or without the `/v1` suffix.
    pub fn new(http: LlmHttp, base_url: &str, api_key: &Secret) -> Result<Self, ProviderError> {
        let mut api_key =
            HeaderValue::from_str(api_key.expose()).map_err(|_| ProviderError::NotConfigured {
                model: PROVIDER.to_owned(),
                hint: "ANTHROPIC_API_KEY contains characters not allowed in an HTTP header",
            })?;
        api_key.set_sensitive(true);
        let root = base_url.trim_end_matches('/');
        let base_url = root.strip_suffix("/v1").unwrap_or(root).to_owned();
        Ok(Self {
            http,
            messages: Endpoint::new(format!("{base_url}/v1/messages")),
            base_url,
            api_key,
        })
    }

    fn authorized(&self, builder: RequestBuilder) -> RequestBuilder {
        builder
            .header("x-api-key", self.api_key.clone())
            .header("anthropic-version", API_VERSION)
    }

    async fn post_messages(
        &self,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<Upstream, ProviderError> {
        check_answer_tool(req).map_err(|operation| ProviderError::Unsupported {
            provider: PROVIDER,
            operation,
        })?;
        let builder = self
            .authorized(self.messages.post(self.http.client()))
            .json(&MessagesBody::new(req, stream));
        self.http.send(PROVIDER, builder).await
    }
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u32,
    #[serde(default)]
    output_tokens: u32,
}

#[derive(Deserialize)]
struct MessageResponse {
    model: Option<String>,
    content: Vec<ContentBlock>,
    usage: WireUsage,
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamPayload {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartedBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: Option<MessageDeltaBody>,
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct StartedMessage {
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartedBlock {
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    /// A piece of a tool call's input, as JSON text.
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<WireModel>,
}

#[derive(Deserialize)]
struct WireModel {
    id: String,
}

/// What the stream has revealed so far: input tokens at the start, output tokens in
/// `message_delta` (cumulative), and which content blocks are tool calls.
#[derive(Default)]
struct StreamState {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    finish: FinishReason,
    /// The tool-use blocks by content-block index, in call order (a call's index in this
    /// list is its OpenAI-style call index), and whether any input arrived for each.
    tool_blocks: Vec<(u32, bool)>,
    /// With a JSON response format: the tool whose input is the answer's text.
    json_tool: Option<String>,
    /// The content block of that tool's call, and whether any of its input arrived.
    json_block: Option<(u32, bool)>,
}

impl StreamState {
    fn report(&self) -> Option<Usage> {
        Some(Usage::new(self.input_tokens?, self.output_tokens?))
    }

    fn call_index(&self, block: u32) -> Option<usize> {
        self.tool_blocks
            .iter()
            .position(|(index, _)| *index == block)
    }
}

/// Why the answer ended. In JSON mode the answer is written through a tool, so `tool_use`
/// means the answer ended whole, unless the model also `called` one of the client's tools.
fn finish(reason: &str, json_answer: bool, called: bool) -> FinishReason {
    match FinishReason::from_provider(Some(reason)) {
        FinishReason::ToolCalls if json_answer && !called => FinishReason::Stop,
        finish => finish,
    }
}

/// A tool call's input as the JSON text of its arguments (`{}` for none).
fn input_text(input: Value) -> String {
    match input {
        Value::Null => "{}".to_owned(),
        input => input.to_string(),
    }
}

fn call_delta(index: usize, id: Option<String>, name: Option<String>, arguments: String) -> Frame {
    Frame::ToolCall(ToolCallDelta {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        id,
        name,
        arguments,
    })
}

fn decode_event(data: &str, state: &mut StreamState) -> Result<Frame, ProviderError> {
    let payload: StreamPayload =
        serde_json::from_str(data).map_err(|error| ProviderError::Protocol {
            provider: PROVIDER,
            message: format!("invalid stream event: {error}"),
        })?;
    Ok(match payload {
        StreamPayload::MessageStart { message } => {
            state.input_tokens = Some(message.usage.input_tokens);
            state.output_tokens = Some(message.usage.output_tokens);
            Frame::Ignore
        }
        // The answer's own tool, in JSON mode: its input is the answer's text. A second call
        // of it is not registered, so its pieces are dropped (the answer is the first).
        StreamPayload::ContentBlockStart {
            index,
            content_block: StartedBlock::ToolUse { name, .. },
        } if state.json_tool.as_ref() == Some(&name) => {
            if state.json_block.is_none() {
                state.json_block = Some((index, false));
            }
            Frame::Ignore
        }
        StreamPayload::ContentBlockDelta {
            index,
            delta: BlockDelta::InputJsonDelta { partial_json },
        } if state.json_block.is_some_and(|(block, _)| block == index) => {
            if partial_json.is_empty() {
                Frame::Ignore
            } else {
                state.json_block = Some((index, true));
                Frame::Token(partial_json)
            }
        }
        // In JSON mode the answer is the tool's input alone: text around it would break it.
        StreamPayload::ContentBlockDelta {
            delta: BlockDelta::TextDelta { .. },
            ..
        } if state.json_tool.is_some() => Frame::Ignore,
        StreamPayload::ContentBlockStop { index }
            if state.json_block.is_some_and(|(block, _)| block == index) =>
        {
            match state.json_block {
                Some((_, false)) => Frame::Token("{}".to_owned()),
                _ => Frame::Ignore,
            }
        }
        StreamPayload::ContentBlockStart {
            index,
            content_block: StartedBlock::ToolUse { id, name },
        } => {
            state.tool_blocks.push((index, false));
            call_delta(
                state.tool_blocks.len() - 1,
                Some(id),
                Some(name),
                String::new(),
            )
        }
        StreamPayload::ContentBlockDelta {
            delta: BlockDelta::TextDelta { text },
            ..
        } if !text.is_empty() => Frame::Token(text),
        StreamPayload::ContentBlockDelta {
            index,
            delta: BlockDelta::InputJsonDelta { partial_json },
        } if !partial_json.is_empty() => match state.call_index(index) {
            Some(call) => {
                state.tool_blocks[call].1 = true;
                call_delta(call, None, None, partial_json)
            }
            None => Frame::Ignore,
        },
        // A call without input has none to stream: its arguments are `{}`, as in a whole
        // answer, so that clients parsing them as JSON get an object.
        StreamPayload::ContentBlockStop { index } => match state.call_index(index) {
            Some(call) if !state.tool_blocks[call].1 => {
                call_delta(call, None, None, "{}".to_owned())
            }
            _ => Frame::Ignore,
        },
        StreamPayload::MessageDelta {
            delta,
            usage: reported,
        } => {
            if let Some(reported) = reported {
                state.output_tokens = Some(reported.output_tokens);
            }
            if let Some(reason) = delta.and_then(|delta| delta.stop_reason) {
                let called = !state.tool_blocks.is_empty();
                state.finish = finish(&reason, state.json_tool.is_some(), called);
            }
            Frame::Ignore
        }
        StreamPayload::MessageStop => Frame::Done(state.report(), state.finish),
        StreamPayload::Error { error } => {
            let status = if error.kind == "overloaded_error" {
                OVERLOADED_STATUS
            } else {
                200
            };
            return Err(ProviderError::Upstream {
                provider: PROVIDER,
                status,
                message: safe_message(&error.message),
            });
        }
        _ => Frame::Ignore,
    })
}

#[async_trait]
impl LlmProvider for AnthropicProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let response: MessageResponse = self.post_messages(req, false).await?.json().await?;
        let answer_tool = answer_tool_name(req);
        let mut answered = false;
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in response.content {
            match block {
                ContentBlock::Text { text: part } if answer_tool.is_none() => text.push_str(&part),
                ContentBlock::Text { .. } => {}
                // The tool a JSON answer is written through: its (first) input is the answer,
                // and text around it would break it.
                ContentBlock::ToolUse { name, input, .. } if answer_tool == Some(&name) => {
                    if !answered {
                        text = input_text(input);
                        answered = true;
                    }
                }
                ContentBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input_text(input),
                }),
                ContentBlock::Other => {}
            }
        }
        let called = !tool_calls.is_empty();
        Ok(Completion {
            text,
            tool_calls,
            refusal: None,
            usage: Usage::new(response.usage.input_tokens, response.usage.output_tokens),
            model: response.model.unwrap_or_else(|| req.model.clone()),
            finish: response
                .stop_reason
                .as_deref()
                .map_or(FinishReason::Stop, |reason| {
                    finish(reason, answer_tool.is_some(), called)
                }),
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError> {
        let upstream = self.post_messages(req, true).await?;
        let events = sse_events(PROVIDER, upstream.into_chunks());
        let mut state = StreamState {
            json_tool: answer_tool_name(req).map(str::to_owned),
            ..StreamState::default()
        };
        Ok(decode_events(PROVIDER, events, move |event| {
            decode_event(&event.data, &mut state)
        }))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let builder = self.authorized(
            self.http
                .client()
                .get(format!("{}/v1/models?limit=1000", self.base_url)),
        );
        let list: ModelList = self.http.send(PROVIDER, builder).await?.json().await?;
        Ok(list
            .data
            .into_iter()
            .map(|model| ModelInfo {
                id: format!("{PROVIDER}/{}", model.id),
                owned_by: PROVIDER.to_owned(),
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::Json;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use bytes::Bytes;
    use serde_json::{Value, json};

    use super::*;
    use crate::services::llm::StreamEvent;
    use crate::services::llm::test_support::*;

    fn event(name: &str, payload: Value) -> String {
        format!("event: {name}\ndata: {payload}\n\n")
    }

    fn message_start() -> String {
        event(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "content": [], "model": "claude-3-5-haiku-20241022", "stop_reason": null,
            "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        )
    }

    fn text_delta(text: &str) -> String {
        event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}}),
        )
    }

    async fn mock_messages(
        answer: impl Fn() -> Response + Clone + Send + Sync + 'static,
    ) -> (AnthropicProvider, Captured) {
        let captured = Captured::default();
        let seen = captured.clone();
        let router = Router::new().route(
            "/v1/messages",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                let response = answer();
                async move { response }
            }),
        );
        let provider =
            AnthropicProvider::new(http(), &serve(router).await, &Secret::new("sk-ant-test"))
                .unwrap();
        (provider, captured)
    }

    #[tokio::test]
    async fn complete_maps_system_messages_to_the_system_field_and_reads_usage() {
        let (provider, captured) = mock_messages(|| {
            Json(json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
                "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
                "stop_reason": "end_turn", "usage": {"input_tokens": 20, "output_tokens": 4}}))
            .into_response()
        })
        .await;
        let mut request = user_request("claude-3-5-haiku-latest", "Hi");
        request.temperature = Some(1.5);

        let completion = provider.complete(&request).await.unwrap();

        assert_eq!(completion.text, "Hello there");
        assert_eq!(completion.usage, Usage::new(20, 4));
        let (headers, body) = captured.last();
        assert_eq!(headers["x-api-key"], "sk-ant-test");
        assert_eq!(headers["anthropic-version"], API_VERSION);
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(body["messages"], json!([{"role": "user", "content": "Hi"}]));
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["temperature"], 1.0, "clamped to Anthropic's range");
    }

    #[tokio::test]
    async fn stream_follows_the_event_types_and_reports_input_and_output_usage() {
        let (provider, captured) = mock_messages(|| {
            sse(vec![
                message_start(),
                event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                event("ping", json!({"type": "ping"})),
                text_delta("Hel"),
                text_delta("lo"),
                event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 7}})),
                event("message_stop", json!({"type": "message_stop"})),
            ])
        })
        .await;

        let events = streamed(&provider, "claude-3-5-haiku-latest").await;

        assert_eq!(events, hello_events(Usage::new(25, 7)));
        assert_eq!(captured.last().1["stream"], true);
    }

    #[tokio::test]
    async fn tool_use_blocks_become_tool_calls_with_json_text_arguments() {
        let (provider, _) = mock_messages(|| {
            Json(json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 20}}))
            .into_response()
        })
        .await;

        let completion = provider
            .complete(&user_request("claude-x", "Weather?"))
            .await
            .unwrap();

        assert_eq!(completion.text, "Checking.");
        assert_eq!(completion.finish, FinishReason::ToolCalls);
        assert_eq!(
            completion.tool_calls,
            [ToolCall {
                id: "toolu_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into()
            }]
        );
    }

    #[tokio::test]
    async fn streamed_tool_use_blocks_become_numbered_call_pieces() {
        let (provider, _) = mock_messages(|| {
            let block_start = |index: u32, id: &str, name: &str| {
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
                )
            };
            let input = |index: u32, partial: &str| {
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": partial}}),
                )
            };
            let stop = |index: u32| {
                event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": index}),
                )
            };
            sse(vec![
                message_start(),
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ),
                text_delta("Checking."),
                stop(0),
                block_start(1, "toolu_1", "get_weather"),
                input(1, ""),
                input(1, "{\"city\": "),
                input(1, "\"Paris\"}"),
                stop(1),
                block_start(2, "toolu_2", "get_time"),
                stop(2),
                event(
                    "message_delta",
                    json!({"type": "message_delta",
                    "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}}),
                ),
                event("message_stop", json!({"type": "message_stop"})),
            ])
        })
        .await;

        let events = streamed(&provider, "claude-x").await;

        assert_eq!(
            events,
            [
                StreamEvent::Token("Checking.".into()),
                call_piece(0, Some("toolu_1"), Some("get_weather"), ""),
                call_piece(0, None, None, "{\"city\": "),
                call_piece(0, None, None, "\"Paris\"}"),
                call_piece(1, Some("toolu_2"), Some("get_time"), ""),
                // A call without input streams none: its arguments are an empty object.
                call_piece(1, None, None, "{}"),
                StreamEvent::Done {
                    usage: Some(Usage::new(25, 30)),
                    finish: FinishReason::ToolCalls
                },
            ]
        );
    }

    #[tokio::test]
    async fn a_json_answer_comes_back_as_text_from_the_answer_tools_input() {
        let answer = || {
            Json(json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "json_answer", "input": {"n": 3}}],
                "stop_reason": "tool_use", "usage": {"input_tokens": 30, "output_tokens": 9}}))
            .into_response()
        };
        let (provider, captured) = mock_messages(answer).await;
        let mut request = user_request("claude-x", "Count to 3 as JSON");
        request.options.response_format = crate::services::llm::ResponseFormat::JsonObject;

        let completion = provider.complete(&request).await.unwrap();

        assert_eq!(completion.text, r#"{"n":3}"#);
        assert!(completion.tool_calls.is_empty());
        assert_eq!(completion.finish, FinishReason::Stop);
        assert_eq!(
            captured.last().1["tool_choice"],
            json!({"type": "tool", "name": "json_answer", "disable_parallel_tool_use": true})
        );

        let (provider, _) = mock_messages(|| {
            sse(vec![
                message_start(),
                event("content_block_start", json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "tool_use", "id": "toolu_1", "name": "json_answer", "input": {}}})),
                event("content_block_delta", json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": "{\"n\": "}})),
                event("content_block_delta", json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": "3}"}})),
                event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                event("message_delta", json!({"type": "message_delta",
                    "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}})),
                event("message_stop", json!({"type": "message_stop"})),
            ])
        })
        .await;
        let events = streamed_answer(&provider, &request).await;
        assert_eq!(
            events,
            [
                StreamEvent::Token("{\"n\": ".into()),
                StreamEvent::Token("3}".into()),
                StreamEvent::Done {
                    usage: Some(Usage::new(25, 9)),
                    finish: FinishReason::Stop
                },
            ]
        );

        request.options.response_format = crate::services::llm::ResponseFormat::JsonSchema(
            std::sync::Arc::new(crate::services::llm::JsonSchemaFormat {
                name: "names".into(),
                description: None,
                schema: Some(json!({"type": "array", "items": {"type": "string"}})),
                strict: None,
            }),
        );
        let refused = provider.complete(&request).await.unwrap_err();
        assert!(
            matches!(refused, ProviderError::Unsupported { .. }),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_streamed_json_answer_is_the_first_answer_calls_input_alone() {
        let (provider, _) = mock_messages(|| {
            let start = |index: u32, id: &str| {
                event("content_block_start", json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": id, "name": "json_answer", "input": {}}}))
            };
            let input = |index: u32, partial: &str| {
                event("content_block_delta", json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": partial}}))
            };
            let stop = |index: u32| {
                event("content_block_stop", json!({"type": "content_block_stop", "index": index}))
            };
            sse(vec![
                message_start(),
                event("content_block_start", json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}})),
                text_delta("Sure! "),
                stop(0),
                start(1, "toolu_1"),
                // An empty object streams as one empty piece.
                input(1, ""),
                stop(1),
                start(2, "toolu_2"),
                input(2, "{\"again\": true}"),
                stop(2),
                event("message_delta", json!({"type": "message_delta",
                    "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}})),
                event("message_stop", json!({"type": "message_stop"})),
            ])
        })
        .await;
        let mut request = user_request("claude-x", "Nothing, as JSON");
        request.options.response_format = crate::services::llm::ResponseFormat::JsonObject;

        let events = streamed_answer(&provider, &request).await;

        assert_eq!(
            events,
            [
                StreamEvent::Token("{}".into()),
                StreamEvent::Done {
                    usage: Some(Usage::new(25, 9)),
                    finish: FinishReason::Stop
                },
            ]
        );
    }

    #[tokio::test]
    async fn an_error_event_ends_the_stream_with_an_upstream_error() {
        let (provider, _) = mock_messages(|| {
            sse(vec![
                message_start(),
                text_delta("Hel"),
                event("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
            ])
        })
        .await;

        let events = stream_results(&provider, "claude-x").await;

        assert!(
            matches!(events.last(), Some(Err(ProviderError::Upstream { status: 529, message, .. })) if message == "Overloaded"),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn a_stream_cut_before_message_stop_ends_with_an_error() {
        let (provider, _) = mock_messages(|| {
            cut_after(
                "text/event-stream",
                vec![message_start(), text_delta("Hel")],
            )
        })
        .await;

        let events = stream_results(&provider, "claude-x").await;

        assert!(
            matches!(
                events.last(),
                Some(Err(ProviderError::StreamCut {
                    provider: "anthropic"
                }))
            ),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn an_authentication_error_is_summarized_without_the_key() {
        let (provider, _) = mock_messages(|| {
            (StatusCode::UNAUTHORIZED, Json(json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})))
                .into_response()
        })
        .await;

        let error = provider
            .complete(&user_request("claude-x", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(&error, ProviderError::Upstream { status: 401, message, .. } if message == "invalid x-api-key"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn models_are_listed_with_the_anthropic_prefix() {
        let router = Router::new().route(
            "/v1/models",
            get(|headers: HeaderMap| async move {
                assert_eq!(headers["x-api-key"], "sk-ant-test");
                Json(json!({"data": [{"type": "model", "id": "claude-sonnet-4-0", "display_name": "Claude Sonnet 4",
                    "created_at": "2025-05-14T00:00:00Z"}], "has_more": false, "first_id": "a", "last_id": "a"}))
            }),
        );
        let base_url = format!("{}/v1/", serve(router).await);
        let provider =
            AnthropicProvider::new(http(), &base_url, &Secret::new("sk-ant-test")).unwrap();

        let models = provider.list_models().await.unwrap();

        assert_eq!(
            models,
            [ModelInfo {
                id: "anthropic/claude-sonnet-4-0".into(),
                owned_by: "anthropic".into()
            }]
        );
    }
}
