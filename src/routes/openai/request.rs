//! OpenAI's chat completion request, and its translation into the chat service's terms:
//! messages (tool calls and tool results among them), sampling bounds, ragd's RAG extension
//! and the tools offered. Everything that cannot be translated is named in one 422.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::options::{ResponseFormatIn, SamplingIn, StopIn, response_format, sampling};
use super::tools::{ToolCallIn, ToolChoiceIn, ToolIn, tools};
use crate::http::error::FieldError;
use crate::services::chat::{
    ChatParams, DEFAULT_MAX_TOKENS, DEFAULT_TOP_K, OPENAI_LIMITS, RagScope,
};
use crate::services::llm::{AnswerOptions, ChatMessage, OpenAiFields, Role};

/// A message's content: a string, or OpenAI's list of parts (only `text` parts are read).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct CompletionMessage {
    /// `system` (or `developer`), `user`, `assistant` or `tool`.
    #[schema(example = "user")]
    pub role: String,
    /// May be `null` in an assistant message that calls tools.
    pub content: Option<MessageContent>,
    /// The calls an assistant message made, sent back with the conversation.
    pub tool_calls: Option<Vec<ToolCallIn>>,
    /// In a `tool` message: the id of the call whose result `content` is.
    pub tool_call_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and empty `choices`) before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// ragd's extension: ground the answer in the caller's documents.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RagOptions {
    #[serde(default = "yes")]
    pub use_rag: bool,
    #[serde(default)]
    pub document_ids: Vec<Uuid>,
    /// 1 to 20 (default 5).
    #[serde(default = "default_top_k")]
    pub top_k: u32,
}

fn yes() -> bool {
    true
}
fn default_top_k() -> u32 {
    DEFAULT_TOP_K
}

/// OpenAI's chat completion request. The fields only OpenAI's API knows (`reasoning_effort`,
/// `user`, `logit_bias`...) go to OpenAI-compatible servers alone; fields ragd does not know
/// are ignored.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ChatCompletionRequest {
    #[schema(example = "gpt-4o-mini")]
    pub model: Option<String>,
    pub messages: Vec<CompletionMessage>,
    /// 0 to 2 (default: the provider's own).
    pub temperature: Option<f32>,
    /// 1 to 128,000 (default 1024).
    pub max_tokens: Option<u32>,
    /// Preferred over `max_tokens` when both are sent, as OpenAI does.
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// How many answers: ragd gives one, so only 1 is accepted.
    pub n: Option<u32>,
    /// Functions the model may call (at most 128).
    pub tools: Option<Vec<ToolIn>>,
    /// `auto` (the default with tools), `none`, `required`, or
    /// `{"type": "function", "function": {"name": ...}}`.
    pub tool_choice: Option<ToolChoiceIn>,
    /// `false`: at most one tool call per answer.
    pub parallel_tool_calls: Option<bool>,
    /// 0 to 1.
    pub top_p: Option<f32>,
    /// Up to 4 sequences that end the answer.
    pub stop: Option<StopIn>,
    /// For repeatable sampling, where the provider offers it.
    pub seed: Option<i64>,
    /// -2 to 2.
    pub presence_penalty: Option<f32>,
    /// -2 to 2.
    pub frequency_penalty: Option<f32>,
    /// `{"type": "json_object"}` (JSON mode) or `{"type": "json_schema", "json_schema": {...}}`.
    pub response_format: Option<ResponseFormatIn>,
    /// ragd returns no log probabilities: only `false` is accepted.
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
    /// `minimal`, `low`, `medium` or `high`, for reasoning models. This field and the next
    /// ones to `prediction` only OpenAI's API knows: they go to OpenAI-compatible servers as
    /// sent, and to no other provider.
    pub reasoning_effort: Option<String>,
    pub verbosity: Option<String>,
    /// Token ids mapped to a bias from -100 to 100.
    #[schema(value_type = Option<Object>)]
    pub logit_bias: Option<Map<String, Value>>,
    /// Who the end user is, for the provider's abuse monitoring.
    pub user: Option<String>,
    pub safety_identifier: Option<String>,
    pub prompt_cache_key: Option<String>,
    pub service_tier: Option<String>,
    pub store: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    #[schema(value_type = Option<Object>)]
    pub prediction: Option<Value>,
    /// OpenAI's deprecated function calling, refused with a pointer to `tools`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub functions: Option<serde_json::Value>,
    pub ragd: Option<RagOptions>,
}

impl ChatCompletionRequest {
    /// The request in the chat service's terms, or every field that cannot be translated.
    pub fn params(&self) -> Result<ChatParams, Vec<FieldError>> {
        let mut problems = Vec::new();
        if self.n.is_some_and(|n| n != 1) {
            problems.push(FieldError::new("n", "ragd gives one answer: must be 1"));
        }
        if self.functions.is_some() {
            problems.push(FieldError::new(
                "functions",
                "deprecated by OpenAI and not supported: use tools",
            ));
        }
        if self.logprobs == Some(true) || self.top_logprobs.is_some_and(|count| count > 0) {
            problems.push(FieldError::new(
                if self.logprobs == Some(true) {
                    "logprobs"
                } else {
                    "top_logprobs"
                },
                "ragd returns no log probabilities",
            ));
        }
        let sampling = sampling(
            SamplingIn {
                top_p: self.top_p,
                stop: self.stop.as_ref(),
                seed: self.seed,
                presence_penalty: self.presence_penalty,
                frequency_penalty: self.frequency_penalty,
            },
            &mut problems,
        );
        let response_format = response_format(self.response_format.as_ref(), &mut problems);
        let tools = tools(
            self.tools.as_deref(),
            self.tool_choice.as_ref(),
            self.parallel_tool_calls,
            &mut problems,
        );
        let mut messages = Vec::with_capacity(self.messages.len());
        for (index, message) in self.messages.iter().enumerate() {
            if let Some(message) = translate(index, message, &mut problems) {
                messages.push(message);
            }
        }
        let params = ChatParams {
            messages,
            model: self.model.clone(),
            // Only what the client sent: OpenAI's reasoning models refuse any temperature
            // but their default, so ragd must not add one.
            temperature: self.temperature,
            max_tokens: self
                .max_completion_tokens
                .or(self.max_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS),
            rag: self
                .ragd
                .as_ref()
                .filter(|rag| rag.use_rag)
                .map(|rag| RagScope {
                    document_ids: rag.document_ids.clone(),
                    top_k: rag.top_k,
                }),
            options: AnswerOptions {
                tools: tools.map(Arc::new),
                sampling,
                response_format,
                openai_fields: self.openai_fields(),
            },
            limits: &OPENAI_LIMITS,
        };
        if problems.is_empty() {
            problems = params.problems();
            for problem in &mut problems {
                if problem.field == "top_k" {
                    problem.field = "ragd.top_k".to_owned();
                }
            }
        }
        if problems.is_empty() {
            Ok(params)
        } else {
            Err(problems)
        }
    }

    /// The fields only OpenAI's API knows, as one map; `None` when the client sent none.
    fn openai_fields(&self) -> Option<OpenAiFields> {
        let text = |value: &Option<String>| value.clone().map(Value::String);
        let object = |value: &Option<Map<String, Value>>| value.clone().map(Value::Object);
        let fields: Map<String, Value> = [
            ("reasoning_effort", text(&self.reasoning_effort)),
            ("verbosity", text(&self.verbosity)),
            ("logit_bias", object(&self.logit_bias)),
            ("user", text(&self.user)),
            ("safety_identifier", text(&self.safety_identifier)),
            ("prompt_cache_key", text(&self.prompt_cache_key)),
            ("service_tier", text(&self.service_tier)),
            ("store", self.store.map(Value::Bool)),
            ("metadata", object(&self.metadata)),
            ("prediction", self.prediction.clone()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect();
        (!fields.is_empty()).then(|| Arc::new(fields))
    }

    pub fn wants_citations(&self) -> bool {
        self.ragd.as_ref().is_some_and(|rag| rag.use_rag)
    }
}

/// One message in ragd's terms, or its problems added to `problems`.
fn translate(
    index: usize,
    message: &CompletionMessage,
    problems: &mut Vec<FieldError>,
) -> Option<ChatMessage> {
    let field = |name: &str| format!("messages[{index}].{name}");
    let role = match message.role.as_str() {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => {
            problems.push(FieldError::new(
                field("role"),
                "must be system, developer, user, assistant or tool",
            ));
            return None;
        }
    };
    let calls = message.tool_calls.as_deref().unwrap_or_default();
    if !calls.is_empty() && role != Role::Assistant {
        problems.push(FieldError::new(
            field("tool_calls"),
            "only assistant messages call tools",
        ));
    }
    let tool_call_id = match (role, message.tool_call_id.as_deref()) {
        (Role::Tool, Some(id)) if !id.is_empty() => Some(id.to_owned()),
        (Role::Tool, _) => {
            problems.push(FieldError::new(
                field("tool_call_id"),
                "a tool message must name the call it answers",
            ));
            None
        }
        _ => None,
    };
    let mut tool_calls = Vec::with_capacity(calls.len());
    for (number, call) in calls.iter().enumerate() {
        match call.translate() {
            Ok(call) => tool_calls.push(call),
            Err(problem) => problems.push(FieldError::new(
                field(&format!("tool_calls[{number}].{}", problem.field)),
                problem.message,
            )),
        }
    }
    // An assistant message that calls tools may have no content at all.
    let content = match message.content.as_ref() {
        None if !tool_calls.is_empty() => String::new(),
        content => match text_of(content) {
            Some(text) => text,
            None => {
                problems.push(FieldError::new(
                    field("content"),
                    "must be a string or a list of text parts",
                ));
                return None;
            }
        },
    };
    Some(ChatMessage {
        role,
        content,
        tool_calls,
        tool_call_id,
    })
}

fn text_of(content: Option<&MessageContent>) -> Option<String> {
    match content? {
        MessageContent::Text(text) => Some(text.clone()),
        MessageContent::Parts(parts) => {
            let mut text = String::new();
            for part in parts {
                if part.kind != "text" {
                    return None;
                }
                text.push_str(part.text.as_deref()?);
            }
            Some(text)
        }
    }
}
