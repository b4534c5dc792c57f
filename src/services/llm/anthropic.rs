//! The Anthropic provider over the Messages API: system messages become the top-level
//! `system` field, and the SSE event stream (`message_start`, `content_block_delta`,
//! `message_delta`, `message_stop`, `error`) becomes stream events.

use async_trait::async_trait;
use reqwest::RequestBuilder;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};

use super::framing::{Frame, decode_events, lines, sse_events};
use super::http::{LlmHttp, Upstream};
use super::{
    Completion, CompletionRequest, EventStream, LlmProvider, ModelInfo, ProviderError, Role, Usage,
};
use crate::secret::Secret;

const PROVIDER: &str = "anthropic";
const API_VERSION: &str = "2023-06-01";
/// Anthropic accepts temperatures in 0..=1; ragd's API allows up to 2.
const MAX_TEMPERATURE: f32 = 1.0;
/// Anthropic's "overloaded" status, used for an overload reported inside a stream.
const OVERLOADED_STATUS: u16 = 529;

pub struct AnthropicProvider {
    http: LlmHttp,
    base_url: String,
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
        Ok(Self {
            http,
            base_url: root.strip_suffix("/v1").unwrap_or(root).to_owned(),
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
        let builder = self
            .authorized(
                self.http
                    .client()
                    .post(format!("{}/v1/messages", self.base_url)),
            )
            .json(&MessagesBody::new(req, stream));
        self.http.send(PROVIDER, builder).await
    }
}

#[derive(Serialize)]
struct MessagesBody<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage<'a>>,
    temperature: f32,
    stream: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: Role,
    content: &'a str,
}

impl<'a> MessagesBody<'a> {
    /// Anthropic takes system instructions as one top-level field, not as messages.
    fn new(req: &'a CompletionRequest, stream: bool) -> Self {
        let system: Vec<&str> = req
            .messages
            .iter()
            .filter(|message| message.role == Role::System)
            .map(|message| message.content.as_str())
            .collect();
        let messages = req
            .messages
            .iter()
            .filter(|message| message.role != Role::System)
            .map(|message| WireMessage {
                role: message.role,
                content: &message.content,
            })
            .collect();
        Self {
            model: &req.model,
            max_tokens: req.max_tokens,
            system: (!system.is_empty()).then(|| system.join("\n\n")),
            messages,
            temperature: req.temperature.clamp(0.0, MAX_TEMPERATURE),
            stream,
        }
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
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        text: String,
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
    ContentBlockDelta {
        delta: BlockDelta,
    },
    MessageDelta {
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
struct StartedMessage {
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
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

/// Usage as the stream reveals it: input tokens at the start, output tokens in
/// `message_delta` (cumulative).
#[derive(Default)]
struct StreamUsage {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
}

impl StreamUsage {
    fn report(&self) -> Option<Usage> {
        Some(Usage::new(self.input_tokens?, self.output_tokens?))
    }
}

fn decode_event(data: &str, usage: &mut StreamUsage) -> Result<Frame, ProviderError> {
    let payload: StreamPayload =
        serde_json::from_str(data).map_err(|error| ProviderError::Protocol {
            provider: PROVIDER,
            message: format!("invalid stream event: {error}"),
        })?;
    Ok(match payload {
        StreamPayload::MessageStart { message } => {
            usage.input_tokens = Some(message.usage.input_tokens);
            usage.output_tokens = Some(message.usage.output_tokens);
            Frame::Ignore
        }
        StreamPayload::ContentBlockDelta {
            delta: BlockDelta::TextDelta { text },
        } if !text.is_empty() => Frame::Token(text),
        StreamPayload::MessageDelta {
            usage: Some(reported),
        } => {
            usage.output_tokens = Some(reported.output_tokens);
            Frame::Ignore
        }
        StreamPayload::MessageStop => Frame::Done(usage.report()),
        StreamPayload::Error { error } => {
            let status = if error.kind == "overloaded_error" {
                OVERLOADED_STATUS
            } else {
                200
            };
            return Err(ProviderError::Upstream {
                provider: PROVIDER,
                status,
                message: error.message,
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
        let text = response
            .content
            .into_iter()
            .filter_map(|block| match block {
                ContentBlock::Text { text } => Some(text),
                ContentBlock::Other => None,
            })
            .collect();
        Ok(Completion {
            text,
            usage: Usage::new(response.usage.input_tokens, response.usage.output_tokens),
            model: response.model.unwrap_or_else(|| req.model.clone()),
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError> {
        let upstream = self.post_messages(req, true).await?;
        let events = sse_events(lines(PROVIDER, upstream.into_chunks()));
        let mut usage = StreamUsage::default();
        Ok(decode_events(PROVIDER, events, move |event| {
            decode_event(&event.data, &mut usage)
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
