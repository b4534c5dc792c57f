//! The Ollama provider over its native API: `/api/chat` (whole, or NDJSON-streamed),
//! `/api/tags` for the model list and `/api/embed` for embeddings.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::framing::{Frame, decode_events, lines};
use super::http::{LlmHttp, Upstream};
use super::{
    ChatMessage, Completion, CompletionRequest, EmbeddingOutput, EventStream, LlmProvider,
    ModelInfo, ProviderError, RemoteEmbedder, Usage, tokens,
};

const PROVIDER: &str = "ollama";

pub struct OllamaProvider {
    http: LlmHttp,
    base_url: String,
}

impl OllamaProvider {
    pub fn new(http: LlmHttp, base_url: &str) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    async fn post_chat(
        &self,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<Upstream, ProviderError> {
        let body = ChatBody {
            model: &req.model,
            messages: &req.messages,
            stream,
            options: Options {
                temperature: req.temperature,
                num_predict: req.max_tokens,
            },
        };
        let builder = self
            .http
            .client()
            .post(format!("{}/api/chat", self.base_url))
            .json(&body);
        self.http.send(PROVIDER, builder).await
    }
}

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    options: Options,
}

#[derive(Serialize)]
struct Options {
    temperature: f32,
    /// Ollama's name for the output token limit.
    num_predict: u32,
}

/// The whole answer, and also each NDJSON line of a streamed one.
#[derive(Deserialize)]
struct ChatLine {
    model: Option<String>,
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    prompt_eval_count: Option<u32>,
    eval_count: Option<u32>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: String,
}

impl ChatLine {
    /// Ollama reports usage as `prompt_eval_count` (prompt) and `eval_count` (answer); the
    /// prompt count is absent when the prompt was served from its cache.
    fn usage(&self) -> Option<Usage> {
        self.eval_count
            .map(|completion| Usage::new(self.prompt_eval_count.unwrap_or(0), completion))
    }
}

#[derive(Deserialize)]
struct Tags {
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

#[derive(Serialize)]
struct EmbedBody<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbedResponse {
    embeddings: Vec<Vec<f32>>,
    prompt_eval_count: Option<u32>,
}

fn in_stream_error(message: String) -> ProviderError {
    ProviderError::Upstream {
        provider: PROVIDER,
        status: 200,
        message,
    }
}

fn decode_line(line: &str) -> Result<Frame, ProviderError> {
    if line.trim().is_empty() {
        return Ok(Frame::Ignore);
    }
    let line: ChatLine = serde_json::from_str(line).map_err(|error| ProviderError::Protocol {
        provider: PROVIDER,
        message: format!("invalid stream line: {error}"),
    })?;
    if let Some(error) = line.error {
        return Err(in_stream_error(error));
    }
    if line.done {
        return Ok(Frame::Done(line.usage()));
    }
    match line.message {
        Some(message) if !message.content.is_empty() => Ok(Frame::Token(message.content)),
        _ => Ok(Frame::Ignore),
    }
}

#[async_trait]
impl LlmProvider for OllamaProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let answer: ChatLine = self.post_chat(req, false).await?.json().await?;
        if let Some(error) = answer.error {
            return Err(in_stream_error(error));
        }
        let usage = answer.usage();
        let text = answer
            .message
            .map(|message| message.content)
            .unwrap_or_default();
        Ok(Completion {
            usage: usage
                .unwrap_or_else(|| tokens::estimate_usage(&req.model, &req.messages, &text)),
            text,
            model: answer.model.unwrap_or_else(|| req.model.clone()),
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError> {
        let upstream = self.post_chat(req, true).await?;
        let lines = lines(PROVIDER, upstream.into_chunks());
        Ok(decode_events(PROVIDER, lines, |line| decode_line(&line)))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let builder = self
            .http
            .client()
            .get(format!("{}/api/tags", self.base_url));
        let tags: Tags = self.http.send(PROVIDER, builder).await?.json().await?;
        Ok(tags
            .models
            .into_iter()
            .map(|tag| ModelInfo {
                id: format!("{PROVIDER}/{}", tag.name),
                owned_by: PROVIDER.to_owned(),
            })
            .collect())
    }
}

#[async_trait]
impl RemoteEmbedder for OllamaProvider {
    async fn embed(
        &self,
        model: &str,
        inputs: &[String],
    ) -> Result<EmbeddingOutput, ProviderError> {
        let builder = self
            .http
            .client()
            .post(format!("{}/api/embed", self.base_url))
            .json(&EmbedBody {
                model,
                input: inputs,
            });
        let response: EmbedResponse = self.http.send(PROVIDER, builder).await?.json().await?;
        if response.embeddings.len() != inputs.len() {
            return Err(ProviderError::Protocol {
                provider: PROVIDER,
                message: format!(
                    "{} embeddings for {} inputs",
                    response.embeddings.len(),
                    inputs.len()
                ),
            });
        }
        Ok(EmbeddingOutput {
            vectors: response.embeddings,
            prompt_tokens: response.prompt_eval_count.unwrap_or(0),
        })
    }
}
