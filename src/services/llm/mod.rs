//! The LLM provider layer: one trait over every provider, the types they share, and the
//! gateway that routes a model name to its provider with retries, fallback and metrics.
//!
//! Routes and the chat service talk to [`LlmGateway`] only; adding a provider touches this
//! directory and nothing above it.

mod anthropic;
mod clients;
mod error;
mod framing;
mod gateway;
mod http;
mod local;
mod metered;
mod metrics;
mod ollama;
mod openai;
mod options;
mod routing;
pub mod tokens;
mod tools;

#[cfg(test)]
mod test_support;

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

pub use error::ProviderError;
pub use gateway::{LlmGateway, LlmSettings, Routed};
pub use local::LOCAL_MODEL;
pub use metered::MeteredStream;
pub use options::{AnswerOptions, JsonSchemaFormat, OpenAiFields, ResponseFormat, Sampling};
pub use tools::{Tool, ToolCall, ToolCallDelta, ToolChoice, Tools};

/// The provider a model name routes to (`openai`, `anthropic`, `ollama`, `local`).
pub fn provider_of(model: &str) -> &'static str {
    routing::route(model).provider.name()
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, sent back by the client (`tool_call_id` says which call).
    Tool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    /// May be empty in an assistant message that only calls tools.
    pub content: String,
    /// The calls an assistant message made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// In a tool message: the call whose result it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// One retrieved passage, numbered the way the answer cites it (`[number]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSource {
    pub number: usize,
    /// Where the passage comes from (e.g. a file name), for humans reading the answer.
    pub label: String,
    pub text: String,
}

/// What a provider is asked to do.
///
/// Remote models read the retrieved context from a system message the chat service wrote;
/// `context` is there for the local extractive provider, which answers from it alone.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The provider-local model name: the routing prefix (`ollama/`, `anthropic/`, `local/`)
    /// is already stripped.
    pub model: String,
    /// Shared: the gateway hands each candidate model a copy of the request, and the chat's
    /// account keeps the prompt to count it should the call end without a usage report.
    pub messages: Arc<[ChatMessage]>,
    /// `None`: the provider's default, which is what OpenAI's reasoning models (o-series,
    /// gpt-5) accept alone; they refuse any other temperature.
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    pub context: Vec<ContextSource>,
    pub options: AnswerOptions,
}

impl CompletionRequest {
    /// The prompt's tokens by the model's tokenizer: the messages, the tools offered and the
    /// answer's schema.
    pub fn prompt_tokens(&self) -> u32 {
        let definitions =
            tokens::definitions(self.options.tools.as_deref(), &self.options.response_format);
        tokens::count_prompt(&self.model, &self.messages, &definitions)
    }

    /// Usage counted locally, for an answer whose provider reported none; `answer` is the
    /// text the model wrote (tool calls included).
    pub fn estimate_usage(&self, answer: &str) -> Usage {
        Usage::new(
            self.prompt_tokens(),
            tokens::count_text(&self.model, answer),
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// Why the model stopped: clients (the OpenAI SDKs' `finish_reason`) need to know whether an
/// answer is whole or was cut at `max_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its answer.
    #[default]
    Stop,
    /// The answer hit `max_tokens`.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// The provider's safety system stopped or refused the answer.
    ContentFilter,
}

impl FinishReason {
    /// From a provider's own word: OpenAI's and Ollama's `length`, Anthropic's `max_tokens`;
    /// OpenAI's `tool_calls` (and its older `function_call`), Anthropic's `tool_use`; OpenAI's
    /// `content_filter`, Anthropic's `refusal`.
    pub fn from_provider(reason: Option<&str>) -> Self {
        match reason {
            Some("length" | "max_tokens") => Self::Length,
            Some("tool_calls" | "function_call" | "tool_use") => Self::ToolCalls,
            Some("content_filter" | "refusal") => Self::ContentFilter,
            _ => Self::Stop,
        }
    }

    /// The reason of an answer that called tools (`called`): some servers (Ollama, a few
    /// OpenAI-compatible ones) say `stop` then, where OpenAI and its clients say `tool_calls`.
    pub fn with_calls(self, called: bool) -> Self {
        match self {
            Self::Stop if called => Self::ToolCalls,
            finish => finish,
        }
    }

    /// The spelling of OpenAI's `finish_reason`.
    pub fn as_openai(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// The tools the model called, in order (empty when it answered in text alone).
    pub tool_calls: Vec<ToolCall>,
    /// Why the model declined a structured answer, in its words (OpenAI's `refusal`).
    pub refusal: Option<String>,
    pub usage: Usage,
    /// The model name the provider reports having used.
    pub model: String,
    pub finish: FinishReason,
}

/// One event of a streamed answer. A stream ends with exactly one `Done`, or with an error.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Token(String),
    /// A piece of a tool call.
    ToolCall(ToolCallDelta),
    /// A piece of the model's refusal of a structured answer (OpenAI's `delta.refusal`).
    Refusal(String),
    /// `usage` is `None` when the provider reported none; the gateway then counts the tokens
    /// itself, so streams from [`LlmGateway::stream`] always carry `Some`.
    Done {
        usage: Option<Usage>,
        finish: FinishReason,
    },
}

/// A model a caller may ask for, with `id` in its routable form (`ollama/llama3.2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub owned_by: String,
}

/// The stream a provider answers with. It owns the upstream response: dropping it closes the
/// connection, which is how a client that went away stops the provider generating.
pub type EventStream = BoxStream<'static, Result<StreamEvent, ProviderError>>;

#[async_trait]
pub trait LlmProvider: Send + Sync {
    /// The provider's name as used in metrics, logs and error messages.
    fn name(&self) -> &'static str;

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError>;

    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError>;

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError>;
}

/// Vectors for a batch of texts, in the order of the inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingOutput {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: u32,
}

/// A provider that computes embeddings remotely (OpenAI-compatible, Ollama).
#[async_trait]
pub trait RemoteEmbedder: Send + Sync {
    async fn embed(&self, model: &str, inputs: &[String])
    -> Result<EmbeddingOutput, ProviderError>;
}

#[cfg(test)]
mod tests {
    use super::FinishReason;

    #[test]
    fn each_providers_reason_takes_openais_spelling() {
        for (reason, spelled) in [
            (None, "stop"),
            (Some("end_turn"), "stop"),
            (Some("length"), "length"),
            (Some("max_tokens"), "length"),
            (Some("tool_calls"), "tool_calls"),
            (Some("tool_use"), "tool_calls"),
            (Some("content_filter"), "content_filter"),
            (Some("refusal"), "content_filter"),
        ] {
            assert_eq!(
                FinishReason::from_provider(reason).as_openai(),
                spelled,
                "{reason:?}"
            );
        }
        assert_eq!(FinishReason::Stop.with_calls(true), FinishReason::ToolCalls);
        assert_eq!(FinishReason::Length.with_calls(true), FinishReason::Length);
        assert_eq!(FinishReason::Stop.with_calls(false), FinishReason::Stop);
    }
}
