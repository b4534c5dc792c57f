//! The OpenAI-compatible provider: chat completions (whole and SSE-streamed), the model
//! list and embeddings, against any server that speaks OpenAI's API.

use async_trait::async_trait;
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};

use super::framing::{Frame, decode_events, lines, sse_events};
use super::http::{LlmHttp, Upstream};
use super::{
    ChatMessage, Completion, CompletionRequest, EmbeddingOutput, EventStream, LlmProvider,
    ModelInfo, ProviderError, RemoteEmbedder, Usage, tokens,
};
use crate::secret::Secret;

const PROVIDER: &str = "openai";
/// The official API, which wants `max_completion_tokens` (its reasoning models reject
/// `max_tokens`), while other compatible servers often know only `max_tokens`.
const OFFICIAL_HOST: &str = "api.openai.com";

pub struct OpenAiProvider {
    http: LlmHttp,
    base_url: String,
    api_key: Option<Secret>,
    official: bool,
}

impl OpenAiProvider {
    pub fn new(http: LlmHttp, base_url: &str, api_key: Option<Secret>) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            official: base_url.contains(OFFICIAL_HOST),
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

    fn chat_body<'a>(&self, req: &'a CompletionRequest, stream: bool) -> ChatBody<'a> {
        let (max_tokens, max_completion_tokens) = if self.official {
            (None, Some(req.max_tokens))
        } else {
            (Some(req.max_tokens), None)
        };
        ChatBody {
            model: &req.model,
            messages: &req.messages,
            temperature: req.temperature,
            max_tokens,
            max_completion_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }

    async fn post_chat(
        &self,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<Upstream, ProviderError> {
        let url = format!("{}/chat/completions", self.base_url);
        let builder = self
            .request(self.http.client().post(url))
            .json(&self.chat_body(req, stream));
        self.http.send(PROVIDER, builder).await
    }
}

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    temperature: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
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
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    delta: Delta,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
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

/// Decodes one SSE `data:` payload of a chat completion stream.
fn decode_chunk(data: &str, usage: &mut Option<Usage>) -> Result<Frame, ProviderError> {
    if data.trim() == "[DONE]" {
        return Ok(Frame::Done(usage.take()));
    }
    let chunk: ChatChunk = serde_json::from_str(data)
        .map_err(|error| protocol(format!("invalid stream chunk: {error}")))?;
    if let Some(error) = chunk.error {
        return Err(ProviderError::Upstream {
            provider: PROVIDER,
            status: 200,
            message: error
                .message
                .unwrap_or_else(|| "error inside the stream".to_owned()),
        });
    }
    if let Some(reported) = chunk.usage {
        *usage = Some(reported.into());
    }
    let text: String = chunk
        .choices
        .into_iter()
        .filter_map(|choice| choice.delta.content)
        .collect();
    Ok(if text.is_empty() {
        Frame::Ignore
    } else {
        Frame::Token(text)
    })
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
        let usage = match response.usage {
            Some(usage) => usage.into(),
            None => tokens::estimate_usage(&req.model, &req.messages, &text),
        };
        Ok(Completion {
            text,
            usage,
            model: response.model.unwrap_or_else(|| req.model.clone()),
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError> {
        let upstream = self.post_chat(req, true).await?;
        let events = sse_events(lines(PROVIDER, upstream.into_chunks()));
        let mut usage = None;
        Ok(decode_events(PROVIDER, events, move |event| {
            decode_chunk(&event.data, &mut usage)
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
        let url = format!("{}/embeddings", self.base_url);
        let body = EmbeddingBody {
            model,
            input: inputs,
            encoding_format: "float",
        };
        let builder = self.request(self.http.client().post(url)).json(&body);
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
