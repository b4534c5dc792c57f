//! The OpenAI-compatible surface under `/v1`: models, chat completions (whole and streamed)
//! and embeddings, in OpenAI's shapes, so the official SDKs work pointed at ragd. Errors on
//! these paths are re-rendered in OpenAI's error shape by the error-shape middleware.
//!
//! RAG is opt-in here, with the extra body field `ragd: {use_rag, document_ids, top_k}`; the
//! answer then carries a top-level `citations` array (in the first chunk when streaming).

mod embeddings;
mod options;
mod request;
mod tools;

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::future::{Either, ready};
use futures::{StreamExt, stream};
use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use self::request::ChatCompletionRequest;
use self::tools::{ToolCallChunk, ToolCallOut};
use crate::app::AppState;
use crate::http::auth::AuthUser;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::overhead::with_overhead;
use crate::routes::chat::{UsageView, json_event};
use crate::services::chat::{ChatEvent, ChatStream};
use crate::services::retrieval::Citation;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(models))
        .routes(routes!(chat_completions))
        .routes(routes!(embeddings::embeddings))
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorResponse {
    pub error: OpenAiError,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenAiError {
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, `api_error`...
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelList {
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<ModelView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelView {
    /// The name to send as `model`.
    #[schema(example = "ollama/llama3.2")]
    pub id: String,
    #[schema(example = "model")]
    pub object: &'static str,
    /// Unknown for most providers: 0.
    pub created: i64,
    #[schema(example = "ollama")]
    pub owned_by: String,
}

/// Every model the configured providers offer (a provider that cannot be reached is left out).
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    security(("bearer" = []), ("password" = [])),
    responses(
        (status = 200, description = "the models", body = ModelList),
        (status = 401, description = "missing, invalid or expired credentials", body = OpenAiErrorResponse),
    ))]
async fn models(State(state): State<AppState>, _user: AuthUser) -> Json<ModelList> {
    let data = state
        .llm
        .list_models()
        .await
        .into_iter()
        .map(|model| ModelView {
            id: model.id,
            object: "model",
            created: 0,
            owned_by: model.owned_by,
        })
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}

/// OpenAI's `chat.completion` object, plus `citations` when `ragd.use_rag` was asked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChatCompletion {
    #[schema(example = "chatcmpl-0190f6a2-7c1e-7d2b-9a44-3f1b8e0c5d21")]
    pub id: String,
    #[schema(example = "chat.completion")]
    pub object: &'static str,
    /// Unix seconds.
    pub created: i64,
    pub model: String,
    pub choices: Vec<CompletionChoice>,
    pub usage: UsageView,
    pub system_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citations: Option<Vec<Citation>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompletionChoice {
    pub index: u32,
    pub message: AssistantMessage,
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
    #[schema(example = "stop")]
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssistantMessage {
    #[schema(example = "assistant")]
    pub role: &'static str,
    /// `null` when the model only called tools.
    pub content: Option<String>,
    pub refusal: Option<String>,
    /// The tools the model called (absent when it called none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallOut>,
}

/// Answers like OpenAI's chat completions; with `stream: true`, as `chat.completion.chunk`
/// events ending in `data: [DONE]` (a last chunk with `usage` first when
/// `stream_options.include_usage` is set).
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai",
    security(("bearer" = []), ("password" = [])),
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "the completion (or, with `stream: true`, `text/event-stream` of chunks)", body = ChatCompletion),
        (status = 400, description = "malformed JSON, or the conversation does not fit the model's context window (`context_length_exceeded`)", body = OpenAiErrorResponse),
        (status = 401, description = "missing, invalid or expired credentials", body = OpenAiErrorResponse),
        (status = 422, description = "invalid fields (`param` names the first)", body = OpenAiErrorResponse),
        (status = 429, description = "rate or token limit reached", body = OpenAiErrorResponse),
        (status = 502, description = "the provider failed", body = OpenAiErrorResponse),
        (status = 503, description = "no provider is configured for the model", body = OpenAiErrorResponse),
        (status = 504, description = "the provider timed out", body = OpenAiErrorResponse),
    ))]
async fn chat_completions(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(request): JsonBody<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    // Translating the request validates it: every field it cannot take is one 422.
    let params = request.params().map_err(ApiError::validation)?;
    let citations = request.wants_citations();
    let id = format!("chatcmpl-{}", Uuid::now_v7());
    let created = chrono::Utc::now().timestamp();
    if request.stream {
        let include_usage = request
            .stream_options
            .as_ref()
            .is_some_and(|options| options.include_usage);
        let answer = state.chat.stream(user.id, params).await?;
        return Ok(chunks(
            answer,
            Chunking {
                id,
                created,
                citations,
                include_usage,
            },
        ));
    }
    let answer = state.chat.complete(user.id, params).await?;
    let overhead = answer.overhead;
    // OpenAI's `content` is null when the model only called tools or refused.
    let only_calls_or_refuses = !answer.tool_calls.is_empty() || answer.refusal.is_some();
    let content = (!answer.text.is_empty() || !only_calls_or_refuses).then_some(answer.text);
    let response = Json(ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model: answer.model,
        choices: vec![CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                refusal: answer.refusal,
                tool_calls: answer.tool_calls.into_iter().map(Into::into).collect(),
            },
            logprobs: None,
            finish_reason: answer.finish.as_openai(),
        }],
        usage: answer.usage.into(),
        system_fingerprint: None,
        citations: citations.then_some(answer.citations),
    })
    .into_response();
    Ok(with_overhead(response, overhead))
}

struct Chunking {
    id: String,
    created: i64,
    citations: bool,
    include_usage: bool,
}

impl Chunking {
    /// A chunk of one choice: a delta, or the end with its `finish_reason`.
    fn delta(
        &self,
        model: &str,
        delta: Delta<'_>,
        finish_reason: Option<&str>,
        citations: Option<&[Citation]>,
    ) -> Event {
        let choice = [ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason,
        }];
        let usage = self.include_usage.then_some(None);
        self.event(model, &choice, usage, citations)
    }

    /// The chunk of a piece of the answer: text, refusal or tool call (other events have none).
    fn piece(&self, model: &str, event: &ChatEvent) -> Event {
        let delta = match event {
            ChatEvent::Token(token) => Delta {
                content: Some(token),
                ..Delta::default()
            },
            ChatEvent::Refusal(refusal) => Delta {
                refusal: Some(refusal),
                ..Delta::default()
            },
            ChatEvent::ToolCall(call) => Delta {
                tool_calls: Some([ToolCallChunk::from(call)]),
                ..Delta::default()
            },
            ChatEvent::Done(_) | ChatEvent::Failed(_) => Delta::default(),
        };
        self.delta(model, delta, None, None)
    }

    /// The last chunk when the client asked for usage: no choices, the usage.
    fn usage(&self, model: &str, usage: UsageView) -> Event {
        self.event(model, &[], Some(Some(usage)), None)
    }

    fn event(
        &self,
        model: &str,
        choices: &[ChunkChoice<'_>],
        usage: Option<Option<UsageView>>,
        citations: Option<&[Citation]>,
    ) -> Event {
        json_event(&Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model,
            system_fingerprint: None,
            choices,
            usage,
            citations,
        })
    }
}

/// One `chat.completion.chunk` as OpenAI sends it, serialized straight into its SSE event.
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    system_fingerprint: Option<&'static str>,
    choices: &'a [ChunkChoice<'a>],
    /// `null` on every chunk but the last when the client asked for usage; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<UsageView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    citations: Option<&'a [Citation]>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallChunk<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
}

/// The SSE body of a streamed completion: a role chunk (with `citations` when asked), a
/// chunk per token as it arrives, a `finish_reason` chunk, the usage chunk when asked, then
/// `[DONE]`. A provider failure mid-way is one OpenAI-shaped `error` event, and the end.
fn chunks(answer: ChatStream, how: Chunking) -> Response {
    let overhead = answer.overhead;
    let model = answer.model.clone();
    let role = Delta {
        role: Some("assistant"),
        content: Some(""),
        ..Delta::default()
    };
    let citations = how.citations.then_some(answer.citations.as_slice());
    let first = how.delta(&model, role, None, citations);
    let tail = answer.events.flat_map(move |event| match event {
        ChatEvent::Token(_) | ChatEvent::Refusal(_) | ChatEvent::ToolCall(_) => {
            Either::Left(stream::once(ready(how.piece(&model, &event))))
        }
        ChatEvent::Done(summary) => {
            let finish = summary.finish.as_openai();
            let mut events = vec![how.delta(&model, Delta::default(), Some(finish), None)];
            if how.include_usage {
                events.push(how.usage(&model, UsageView::from(summary.usage)));
            }
            events.push(Event::default().data("[DONE]"));
            Either::Right(stream::iter(events))
        }
        ChatEvent::Failed(error) => {
            let body = ApiError::from(error).openai_body().to_string();
            Either::Right(stream::iter(vec![Event::default().data(body)]))
        }
    });
    let body = stream::once(ready(first))
        .chain(tail)
        .map(Ok::<_, Infallible>);
    let response = Sse::new(body)
        .keep_alive(KeepAlive::default())
        .into_response();
    with_overhead(response, overhead)
}
