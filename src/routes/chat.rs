//! `POST /api/v1/chat` and `POST /api/v1/chat/stream`: ragd's own chat shape, answered whole
//! or as server-sent events (`citations`, then `token`s, then `done` or `error`).

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::future::ready;
use futures::{StreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ErrorResponse, FieldError};
use crate::http::extract::{ValidJson, Validate};
use crate::http::overhead::with_overhead;
use crate::services::chat::{
    ChatAnswer, ChatEvent, ChatParams, ChatStream, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE,
    DEFAULT_TOP_K, RAGD_LIMITS, RagScope,
};
use crate::services::llm::{AnswerOptions, ChatMessage, Role, Usage};
use crate::services::retrieval::Citation;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat))
        .routes(routes!(chat_stream))
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    System,
    User,
    Assistant,
}

impl From<MessageRole> for Role {
    fn from(role: MessageRole) -> Self {
        match role {
            MessageRole::System => Role::System,
            MessageRole::User => Role::User,
            MessageRole::Assistant => Role::Assistant,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct MessageIn {
    pub role: MessageRole,
    /// 1 to 10,000 characters.
    #[schema(example = "What does the handbook say about refunds?")]
    pub content: String,
}

/// A conversation to answer, optionally grounded in the caller's documents.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ChatRequest {
    /// 1 to 100 messages, oldest first; the last user message is the question.
    pub messages: Vec<MessageIn>,
    /// Default: `DEFAULT_MODEL`. `ollama/NAME`, `anthropic/NAME` or `claude-*`,
    /// `local/extractive`, anything else goes to the OpenAI-compatible provider.
    #[schema(example = "gpt-4o-mini")]
    pub model: Option<String>,
    /// 0 to 2.
    #[serde(default = "default_temperature")]
    #[schema(default = 0.7, minimum = 0, maximum = 2)]
    pub temperature: f32,
    /// 1 to 4096.
    #[serde(default = "default_max_tokens")]
    #[schema(default = 1024, minimum = 1, maximum = 4096)]
    pub max_tokens: u32,
    /// Answer as server-sent events (the same as /api/v1/chat/stream).
    #[serde(default)]
    pub stream: bool,
    /// Ground the answer in the caller's documents and cite them.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub use_rag: bool,
    /// Only these documents (default: all of the caller's ready documents).
    #[serde(default)]
    pub document_ids: Vec<Uuid>,
    /// Passages retrieved, 1 to 20.
    #[serde(default = "default_top_k")]
    #[schema(default = 5, minimum = 1, maximum = 20)]
    pub top_k: u32,
}

fn default_temperature() -> f32 {
    DEFAULT_TEMPERATURE
}
fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}
fn default_top_k() -> u32 {
    DEFAULT_TOP_K
}
fn yes() -> bool {
    true
}

impl ChatRequest {
    fn params(&self) -> ChatParams {
        ChatParams {
            messages: self
                .messages
                .iter()
                .map(|m| ChatMessage::new(m.role.into(), m.content.clone()))
                .collect(),
            model: self.model.clone(),
            temperature: Some(self.temperature),
            max_tokens: self.max_tokens,
            rag: self.use_rag.then(|| RagScope {
                document_ids: self.document_ids.clone(),
                top_k: self.top_k,
            }),
            // Tools, sampling and format options are the OpenAI-compatible route's; this
            // contract has none of them.
            options: AnswerOptions::default(),
            limits: &RAGD_LIMITS,
        }
    }
}

impl Validate for ChatRequest {
    fn validate(&self) -> Vec<FieldError> {
        self.params().problems()
    }
}

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct UsageView {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

impl From<Usage> for UsageView {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
        }
    }
}

/// A whole answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatResponse {
    #[schema(example = "Refunds are possible within 30 days [1].")]
    pub response: String,
    /// The sources the answer was given, numbered from 1 in this order (`[1]` is the first).
    pub citations: Vec<Citation>,
    /// Equals `usage.total_tokens`.
    pub tokens_used: u32,
    pub usage: UsageView,
    /// The model that answered (a fallback model when the asked one failed).
    #[schema(example = "gpt-4o-mini")]
    pub model: String,
    #[schema(example = "openai")]
    pub provider: String,
    pub processing_time_ms: u64,
}

impl From<ChatAnswer> for ChatResponse {
    fn from(answer: ChatAnswer) -> Self {
        Self {
            // This route has no structured answers; a refusal is the answer's text.
            response: match answer.refusal {
                Some(refusal) if answer.text.is_empty() => refusal,
                _ => answer.text,
            },
            citations: answer.citations,
            tokens_used: answer.usage.total_tokens,
            usage: answer.usage.into(),
            model: answer.model,
            provider: answer.provider.to_owned(),
            processing_time_ms: answer.processing_time_ms,
        }
    }
}

/// Answers a conversation; with `stream: true`, as the same events as /api/v1/chat/stream.
#[utoipa::path(post, path = "/api/v1/chat", tag = "chat",
    security(("bearer" = []), ("password" = [])),
    request_body = ChatRequest,
    responses(
        (status = 200, description = "the answer (or, with `stream: true`, `text/event-stream`)", body = ChatResponse),
        (status = 400, description = "the conversation does not fit the model's context window (`context_length_exceeded`)", body = ErrorResponse),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 422, description = "invalid fields, listed in `details`", body = ErrorResponse),
        (status = 429, description = "rate or token limit reached", body = ErrorResponse),
        (status = 502, description = "the provider failed", body = ErrorResponse),
        (status = 503, description = "no provider is configured for the model", body = ErrorResponse),
        (status = 504, description = "the provider timed out", body = ErrorResponse),
    ))]
async fn chat(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(request): ValidJson<ChatRequest>,
) -> Result<Response, ApiError> {
    if request.stream {
        let stream = state.chat.stream(user.id, request.params()).await?;
        return Ok(events(stream));
    }
    let answer = state.chat.complete(user.id, request.params()).await?;
    let overhead = answer.overhead;
    Ok(with_overhead(
        Json(ChatResponse::from(answer)).into_response(),
        overhead,
    ))
}

/// Answers a conversation as server-sent events, one JSON object per `data:` line:
/// `{"citations": [...]}` first (when any), then `{"token": "..."}` as they arrive, then
/// `{"done": true, "usage", "model", "provider", "processing_time_ms"}`, or
/// `{"error": {"code", "message"}}` if the provider fails mid-way. Comment lines keep the
/// connection alive during long silences. Closing the connection cancels the provider call.
#[utoipa::path(post, path = "/api/v1/chat/stream", tag = "chat",
    security(("bearer" = []), ("password" = [])),
    request_body = ChatRequest,
    responses(
        (status = 200, description = "`text/event-stream` of citations, tokens, then done or error", content_type = "text/event-stream", body = String,
            example = json!("data: {\"citations\":[]}\n\ndata: {\"token\":\"Hello\"}\n\ndata: {\"done\":true,\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10},\"model\":\"gpt-4o-mini\",\"provider\":\"openai\",\"processing_time_ms\":412}\n\n")),
        (status = 400, description = "the conversation does not fit the model's context window (`context_length_exceeded`)", body = ErrorResponse),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 422, description = "invalid fields, listed in `details`", body = ErrorResponse),
        (status = 429, description = "rate or token limit reached", body = ErrorResponse),
        (status = 502, description = "the provider failed before answering", body = ErrorResponse),
        (status = 503, description = "no provider is configured for the model", body = ErrorResponse),
        (status = 504, description = "the provider timed out before answering", body = ErrorResponse),
    ))]
async fn chat_stream(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(request): ValidJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let stream = state.chat.stream(user.id, request.params()).await?;
    Ok(events(stream))
}

/// The SSE body of a streamed answer. Each event is sent as soon as the provider's chunk
/// arrives; dropping the body (the client left) drops the upstream request.
fn events(answer: ChatStream) -> Response {
    let overhead = answer.overhead;
    let citations = (!answer.citations.is_empty()).then(|| {
        json_event(&CitationsEvent {
            citations: &answer.citations,
        })
    });
    let tail = answer.events.filter_map(|event| {
        ready(match event {
            // This route has no structured answers to refuse; a refusal is the answer's text.
            ChatEvent::Token(token) | ChatEvent::Refusal(token) => {
                Some(json_event(&TokenEvent { token: &token }))
            }
            // Only a request that offers tools gets calls, and this route offers none.
            ChatEvent::ToolCall(_) => None,
            ChatEvent::Done(summary) => Some(json_event(&DoneEvent {
                done: true,
                usage: UsageView::from(summary.usage),
                model: &summary.model,
                provider: summary.provider,
                processing_time_ms: summary.processing_time_ms,
            })),
            ChatEvent::Failed(error) => {
                let error = ApiError::from(error);
                Some(json_event(
                    &json!({"error": {"code": error.code, "message": error.message}}),
                ))
            }
        })
    });
    let body = stream::iter(citations).chain(tail).map(Ok::<_, Infallible>);
    let response = Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response();
    with_overhead(response, overhead)
}

#[derive(Serialize)]
struct CitationsEvent<'a> {
    citations: &'a [Citation],
}

#[derive(Serialize)]
struct TokenEvent<'a> {
    token: &'a str,
}

#[derive(Serialize)]
struct DoneEvent<'a> {
    done: bool,
    usage: UsageView,
    model: &'a str,
    provider: &'a str,
    processing_time_ms: u64,
}

/// Room for a token's event (an OpenAI chunk is about 200 bytes), so that most are written
/// without growing the buffer.
const EVENT_CAPACITY: usize = 256;

/// An SSE event carrying `data` as JSON, serialized without building a JSON tree first.
/// It is written to a string and then into the event: axum's `Event::json_data` scans and
/// grows the event for each of serde's many small writes, which costs more than the JSON.
/// ragd's event types always serialize; if one ever did not, the client gets a comment line
/// rather than a broken stream.
pub fn json_event(data: &impl Serialize) -> Event {
    let mut json = Vec::with_capacity(EVENT_CAPACITY);
    let written = serde_json::to_writer(&mut json, data).map_err(|error| error.to_string());
    match written.and_then(|()| String::from_utf8(json).map_err(|error| error.to_string())) {
        Ok(json) => Event::default().data(json),
        Err(error) => {
            tracing::error!(%error, "an SSE event could not be serialized");
            Event::default().comment("unserializable event")
        }
    }
}
