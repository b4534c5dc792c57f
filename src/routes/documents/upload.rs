//! `POST /api/v1/documents/upload`: a multipart form read field by field as it arrives. The
//! `file` field goes to the documents service piece by piece (it writes, hashes and measures
//! on the way), so an upload is never held in memory, whatever its size.
//!
//! Large files over slow links take long, so this route is not held to the handler timeout
//! of the others. The whole upload must end within `UPLOAD_TIMEOUT_SECONDS` (408 past it),
//! and its body must keep arriving: a pause longer than `REQUEST_TIMEOUT_SECONDS` means the
//! client is gone (408, nothing kept).

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, header};
use futures::TryStreamExt;
use http_body_util::Limited;
use serde::Serialize;
use tower_http::timeout::{TimeoutBody, TimeoutError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ErrorResponse, FieldError};
use crate::services::ingest::UploadError;
use crate::services::ingest::upload::{MAX_METADATA_BYTES, parse_metadata};
use crate::store::DocumentStatus;

/// Room for the form's own framing (boundaries, part headers, `metadata`) on top of
/// `MAX_UPLOAD_MB`: the file itself is held to the exact limit by the documents service.
const MULTIPART_OVERHEAD_BYTES: u64 = 1024 * 1024;

/// The upload route. `crate::http::router` bounds the whole upload by `UPLOAD_TIMEOUT_SECONDS`.
pub fn router() -> OpenApiRouter<AppState> {
    // The global limit (MAX_REQUEST_BODY_KB) is sized for JSON; `UploadForm` sets this route's.
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::disable())
}

/// The answer to an upload: the document to follow with `GET /api/v1/documents/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadAccepted {
    pub document_id: Uuid,
    #[schema(example = "handbook.pdf")]
    pub filename: String,
    /// `queued` for a new document; a duplicate's current status.
    pub status: DocumentStatus,
    #[schema(example = "queued for processing")]
    pub message: String,
}

/// The upload form: the document, and optionally metadata to keep with it.
// Only describes the form in OpenAPI; the handler streams the fields as they arrive.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the multipart form in OpenAPI; never built"
)]
struct UploadForm {
    /// The document: plain text, Markdown, HTML, PDF, DOCX, CSV or JSON, at most
    /// `MAX_UPLOAD_MB`. Its type is decided from its content and its filename's extension.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// A JSON object (at most 16 KiB) kept with the document and returned with it.
    #[schema(example = r#"{"team":"ops"}"#)]
    metadata: Option<String>,
}

/// The request's multipart body, read through a limit of `MAX_UPLOAD_MB` plus the form's
/// framing instead of the global JSON one, and failing when it pauses for longer than
/// `REQUEST_TIMEOUT_SECONDS`.
struct UploadBody(Multipart);

impl FromRequest<AppState> for UploadBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let max_upload = state.ingest.max_upload_bytes();
        let limit = max_upload.saturating_add(MULTIPART_OVERHEAD_BYTES);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            // Refused before reading a byte of it.
            return Err(UploadError::TooLarge {
                limit_bytes: max_upload,
            }
            .into());
        }
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let pause = state.settings.request_timeout;
        let req = req.map(|body| Body::new(Limited::new(TimeoutBody::new(pause, body), limit)));
        Multipart::from_request(req, state)
            .await
            .map(Self)
            .map_err(|_| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "expected a multipart/form-data body with a `file` field",
                )
            })
    }
}

/// Uploads a document: stored, then processed in the background (`queued -> processing ->
/// ready | failed`). The same bytes uploaded again return the existing document.
#[utoipa::path(post, path = "/api/v1/documents/upload", tag = "documents",
    security(("bearer" = []), ("password" = [])),
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "stored and queued (or the existing document with the same bytes)", body = UploadAccepted),
        (status = 400, description = "a broken multipart body or an interrupted upload", body = ErrorResponse),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 408, description = "the body paused for longer than REQUEST_TIMEOUT_SECONDS, or the upload took longer than UPLOAD_TIMEOUT_SECONDS; nothing was kept", body = ErrorResponse),
        (status = 413, description = "the file is larger than MAX_UPLOAD_MB; nothing was kept", body = ErrorResponse),
        (status = 415, description = "not a format ragd extracts text from, or not a multipart body", body = ErrorResponse),
        (status = 422, description = "no `file` field, or `metadata` is not a JSON object", body = ErrorResponse),
    ))]
async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    UploadBody(mut form): UploadBody,
) -> Result<(StatusCode, Json<UploadAccepted>), ApiError> {
    let mut file = None;
    let mut metadata = None;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().map(str::to_owned);
        match name.as_deref() {
            Some("file") if file.is_some() => {
                return Err(invalid("file", "send one file per upload"));
            }
            Some("file") => {
                let filename = field.file_name().unwrap_or_default().to_owned();
                // The service sees only that the body broke off; a pause is told apart here.
                let paused = AtomicBool::new(false);
                let body = field.inspect_err(|err| {
                    if body_paused(err) {
                        paused.store(true, Ordering::Relaxed);
                    }
                });
                // A received file not registered below (an error, a bad field after it) is
                // deleted when dropped.
                let received = state.ingest.receive(&filename, body).await;
                file = Some(received.map_err(|err| {
                    if paused.load(Ordering::Relaxed) {
                        paused_error()
                    } else {
                        err.into()
                    }
                })?);
            }
            Some("metadata") => metadata = Some(read_metadata(field).await?),
            // Anything else is skipped (HTML forms may add fields), within the body limit.
            _ => {}
        }
    }
    let file = file.ok_or_else(|| invalid("file", "a multipart field named `file` is required"))?;
    let metadata = metadata.unwrap_or_else(|| serde_json::json!({}));
    let uploaded = state.ingest.register(user.id, file, metadata).await?;
    let message = if uploaded.created {
        "queued for processing"
    } else {
        "these bytes were already uploaded: this is the existing document"
    };
    let document = uploaded.document;
    Ok((
        StatusCode::ACCEPTED,
        Json(UploadAccepted {
            document_id: document.id,
            filename: document.filename,
            status: document.status,
            message: message.to_owned(),
        }),
    ))
}

/// Reads the `metadata` field, refusing it as soon as it passes its size bound.
async fn read_metadata(mut field: Field<'_>) -> Result<serde_json::Value, ApiError> {
    let mut raw = Vec::new();
    while let Some(piece) = field.chunk().await.map_err(multipart_error)? {
        if raw.len() + piece.len() > MAX_METADATA_BYTES {
            return Err(invalid(
                "metadata",
                format!("must be at most {MAX_METADATA_BYTES} bytes"),
            ));
        }
        raw.extend_from_slice(&piece);
    }
    let text = String::from_utf8(raw).map_err(|_| invalid("metadata", "must be UTF-8 JSON"))?;
    parse_metadata(&text).map_err(|err| invalid("metadata", err.to_string()))
}

fn multipart_error(err: MultipartError) -> ApiError {
    if body_paused(&err) {
        paused_error()
    } else if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
    } else {
        ApiError::bad_request("invalid_upload", err.body_text())
    }
}

/// Whether the body stopped arriving for longer than its pause limit.
fn body_paused(err: &MultipartError) -> bool {
    std::iter::successors(err.source(), |cause: &&(dyn Error + 'static)| {
        (*cause).source()
    })
    .any(|cause| cause.is::<TimeoutError>())
}

fn paused_error() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "the upload stopped arriving for longer than REQUEST_TIMEOUT_SECONDS; nothing was kept",
    )
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)])
}
