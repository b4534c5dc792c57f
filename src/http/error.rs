//! The one error catalogue: every failure any layer reports becomes an [`ApiError`] here, with
//! a stable snake_case code and a status, and is rendered in the contract's shape (or OpenAI's
//! on `/v1`). 5xx details are logged with the request id, never sent to the client.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::http::middleware::{rate_limit, request_id};
use crate::services::auth::accounts::AccountError;
use crate::services::chat::ChatError;
use crate::services::embeddings::EmbeddingError;
use crate::services::ingest::UploadError;
use crate::services::llm::ProviderError;
use crate::services::rate_limits::Refusal;
use crate::services::retrieval::RetrievalError;
use crate::store::StoreError;

/// One invalid input field, as listed in a 422's `details`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field in the request, e.g. `messages[0].content`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The body of every 4xx/5xx answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `validation_error`, `not_found`, `rate_limited`.
    pub code: String,
    /// A human sentence.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub details: Option<Value>,
    /// Extra response headers (Retry-After, WWW-Authenticate); boxed to keep the error small.
    pub headers: Box<HeaderMap>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
            details: None,
            headers: Box::default(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::unauthorized_with("unauthorized", message)
    }

    /// A 401 with its own code; always with the `WWW-Authenticate: Bearer` challenge.
    pub fn unauthorized_with(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// A 422 listing every invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let message = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            message,
        );
        error.details = serde_json::to_value(errors).ok();
        error
    }

    /// An unexpected failure: logged here with its cause, answered with a generic sentence.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred",
        )
    }

    pub fn service_unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// The error a framework layer produced with only a status (unknown route, 405, 413, a
    /// caught panic, a handler timeout), in our terms.
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method_not_allowed", "method not allowed on this route")
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "unsupported content type")
            }
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
            StatusCode::SERVICE_UNAVAILABLE => (
                "service_unavailable",
                "the service is unavailable, try again",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => ("validation_error", "the request is invalid"),
            StatusCode::UNAUTHORIZED => ("unauthorized", "authentication required"),
            status if status.is_server_error() => ("internal_error", "an internal error occurred"),
            _ => ("bad_request", "the request is invalid"),
        };
        Self::new(status, code, message)
    }

    /// The contract's body: `{"error": {code, message, details?}, "request_id"}`.
    pub fn body(&self) -> ErrorResponse {
        ErrorResponse {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
            request_id: request_id::current(),
        }
    }

    /// OpenAI's body, for `/v1`: `{"error": {message, type, param, code}}`.
    pub fn openai_body(&self) -> Value {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            status if status.is_server_error() => "api_error",
            _ => "invalid_request_error",
        };
        let param = self
            .details
            .as_ref()
            .and_then(|d| d.get(0))
            .and_then(|first| first.get("field"))
            .cloned()
            .unwrap_or(Value::Null);
        json!({"error": {"message": self.message, "type": kind, "param": param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        response.headers_mut().extend(*self.headers.clone());
        // Marks the response as already in our shape, and lets /v1 re-render it as OpenAI's.
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => {
                tracing::error!(error = %err, "database unavailable");
                Self::service_unavailable(
                    "database_unavailable",
                    "the database is unavailable, try again",
                )
            }
            StoreError::Conflict { .. } => Self::conflict("conflict", "the object already exists"),
            other => Self::internal(&other),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let message = err.to_string();
        match err {
            AccountError::RegistrationClosed => {
                Self::new(StatusCode::FORBIDDEN, "registration_disabled", message)
            }
            AccountError::EmailTaken => Self::conflict("email_taken", message),
            AccountError::InvalidCredentials => {
                Self::unauthorized_with("invalid_credentials", message)
            }
            AccountError::Unauthenticated(_)
            | AccountError::UnknownUser
            | AccountError::UnknownApiKey => Self::unauthorized(message),
            AccountError::ApiKeyNotFound => Self::not_found("API key"),
            AccountError::TooManyApiKeys => Self::conflict("too_many_api_keys", message),
            AccountError::Store(store) => store.into(),
            AccountError::Crypto(crypto) => Self::internal(&crypto),
        }
    }
}

impl From<ProviderError> for ApiError {
    fn from(err: ProviderError) -> Self {
        // The provider's own summary is safe to show (no secrets, no raw bodies) and tells the
        // user which provider failed; the full error is logged once here.
        tracing::warn!(error = %err, kind = err.kind(), "LLM provider call failed");
        let message = err.to_string();
        match err {
            ProviderError::NotConfigured { .. } => {
                Self::service_unavailable("provider_not_configured", message)
            }
            ProviderError::Timeout { .. } => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "provider_timeout", message)
            }
            ProviderError::Unsupported { .. } => {
                Self::bad_request("unsupported_operation", message)
            }
            ProviderError::RateLimited { retry_after, .. } => {
                let error = Self::new(StatusCode::BAD_GATEWAY, "provider_rate_limited", message);
                match retry_after
                    .and_then(|d| HeaderValue::from_str(&d.as_secs().max(1).to_string()).ok())
                {
                    Some(seconds) => error.with_header(header::RETRY_AFTER, seconds),
                    None => error,
                }
            }
            ProviderError::Upstream { .. }
            | ProviderError::Connect { .. }
            | ProviderError::Protocol { .. }
            | ProviderError::StreamCut { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "provider_error", message)
            }
        }
    }
}

impl From<EmbeddingError> for ApiError {
    fn from(err: EmbeddingError) -> Self {
        tracing::warn!(error = %err, kind = err.kind(), "embedding failed");
        let message = err.to_string();
        match err {
            EmbeddingError::InvalidInput { .. } => {
                Self::bad_request("invalid_embedding_input", message)
            }
            EmbeddingError::DimensionMismatch { .. }
            | EmbeddingError::StoredDimensionMismatch { .. } => {
                Self::conflict("embedding_model_mismatch", message)
            }
            EmbeddingError::Timeout => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "provider_timeout", message)
            }
            EmbeddingError::Unavailable { .. } | EmbeddingError::InvalidResponse { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "provider_error", message)
            }
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(err: UploadError) -> Self {
        let message = err.to_string();
        match err {
            UploadError::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            UploadError::Unsupported(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            ),
            UploadError::BadRequest(_) | UploadError::Interrupted(_) => {
                Self::bad_request("invalid_upload", message)
            }
            UploadError::Store(store) => store.into(),
            UploadError::Io(_) => Self::internal(&err),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Limited(decision) => {
                // No wait helps a cost above the whole quota; a minute restores it anyway.
                let retry_after = decision
                    .retry_after
                    .map_or(60, |wait| rate_limit::whole_seconds(wait).max(1));
                let mut error = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "rate limit exceeded ({} a minute); retry in {retry_after} s",
                        decision.limit
                    ),
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after));
                rate_limit::insert_quota_headers(&mut error.headers, &decision);
                error
            }
            Refusal::Unavailable => Self::service_unavailable(
                "rate_limiter_unavailable",
                "the rate limiter is unavailable, try again shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(1_u64)),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(err: ChatError) -> Self {
        let message = err.to_string();
        match err {
            ChatError::Invalid(problems) => Self::validation(problems),
            // 400, as OpenAI answers it, so SDKs raise their usual "bad request" error.
            ChatError::ContextTooLong(_) => {
                Self::new(StatusCode::BAD_REQUEST, "context_length_exceeded", message)
            }
            ChatError::TokenLimit { retry_after, .. } => {
                let error = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "token_limit_exceeded",
                    message,
                );
                match retry_after
                    .and_then(|d| HeaderValue::from_str(&d.as_secs().max(1).to_string()).ok())
                {
                    Some(seconds) => error.with_header(header::RETRY_AFTER, seconds),
                    None => error.with_details(json!({
                        "reason": "this request alone needs more tokens than the per-minute limit"
                    })),
                }
            }
            ChatError::LimiterUnavailable => {
                Self::service_unavailable("rate_limiter_unavailable", message)
            }
            ChatError::Grounding(grounding) => grounding.0,
            ChatError::Provider { error, overhead } => {
                let mut error = Self::from(error);
                error.headers.insert(
                    crate::http::overhead::OVERHEAD_HEADER.clone(),
                    crate::http::overhead::overhead_value(overhead),
                );
                error
            }
        }
    }
}

impl From<RetrievalError> for ApiError {
    fn from(err: RetrievalError) -> Self {
        match err {
            RetrievalError::Embedding(embedding) => embedding.into(),
            RetrievalError::Store(store) => store.into(),
        }
    }
}
