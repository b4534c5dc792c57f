//! Documents: upload (in [`upload`]), list with cursor pages, show, delete and reindex.
//!
//! Every handler passes the caller's id to the documents service, which filters by it in SQL:
//! another user's document (or an id that is not a UUID) is `404`, as if it did not exist.

pub mod upload;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ErrorResponse, FieldError};
use crate::store::{Document, DocumentPage, DocumentStatus};

/// Page size when the client names none, and the largest it may ask for.
const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_PAGE_SIZE: u32 = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, delete))
        .routes(routes!(reindex))
}

/// A document as its owner sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Document)]
pub struct DocumentView {
    pub id: Uuid,
    /// The uploaded file's name, sanitized (display only).
    #[schema(example = "handbook.pdf")]
    pub filename: String,
    /// Decided from the content and the extension, never from the client's header.
    #[schema(example = "application/pdf")]
    pub content_type: String,
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes; uploading the same bytes again returns this document.
    pub sha256: String,
    pub status: DocumentStatus,
    /// Why processing failed, when `status` is `failed`.
    pub error: Option<String>,
    /// How many searchable chunks the document was split into (0 until `ready`).
    pub chunk_count: i32,
    /// The JSON object sent with the upload (`{}` when none).
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Document> for DocumentView {
    fn from(document: Document) -> Self {
        Self {
            id: document.id,
            filename: document.filename,
            content_type: document.content_type,
            size_bytes: document.size_bytes,
            sha256: document.sha256,
            status: document.status,
            error: document.error,
            chunk_count: document.chunk_count,
            metadata: document.metadata,
            created_at: document.created_at,
            updated_at: document.updated_at,
        }
    }
}

/// One page of the caller's documents, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentList {
    pub items: Vec<DocumentView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The list's query string, read as text so that every bad value becomes a 422 naming it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Page size, 1..100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Only documents in this state.
    #[param(value_type = Option<DocumentStatus>)]
    status: Option<String>,
}

impl ListParams {
    fn parse(raw: Option<&str>) -> Result<DocumentPage, ApiError> {
        let params: Self = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|err| ApiError::validation(vec![FieldError::new("query", err.to_string())]))?;
        let mut errors = Vec::new();
        let limit = match params.limit.as_deref() {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.parse::<u32>() {
                Ok(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => limit,
                _ => {
                    errors.push(FieldError::new(
                        "limit",
                        format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                    ));
                    DEFAULT_PAGE_SIZE
                }
            },
        };
        let before = params.cursor.as_deref().and_then(|raw| {
            let parsed = Uuid::parse_str(raw).ok();
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "cursor",
                    "must be a next_cursor from a previous page",
                ));
            }
            parsed
        });
        let status = params.status.as_deref().and_then(|raw| {
            let parsed = DocumentStatus::parse(raw);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "status",
                    "must be one of queued, processing, ready, failed",
                ));
            }
            parsed
        });
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(DocumentPage {
            limit,
            before,
            status,
        })
    }
}

/// Lists the caller's documents, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/documents", tag = "documents",
    security(("bearer" = []), ("password" = [])),
    params(ListParams),
    responses(
        (status = 200, description = "a page of the caller's documents", body = DocumentList),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 422, description = "a bad limit, cursor or status", body = ErrorResponse),
    ))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    RawQuery(query): RawQuery,
) -> Result<Json<DocumentList>, ApiError> {
    let page = ListParams::parse(query.as_deref())?;
    // One more than asked tells whether another page follows, without a count query.
    let mut documents = state
        .ingest
        .list(
            user.id,
            DocumentPage {
                limit: page.limit + 1,
                ..page
            },
        )
        .await?;
    let has_more = documents.len() > page.limit as usize;
    documents.truncate(page.limit as usize);
    let next_cursor = has_more
        .then(|| documents.last().map(|last| last.id.to_string()))
        .flatten();
    Ok(Json(DocumentList {
        items: documents.into_iter().map(DocumentView::from).collect(),
        next_cursor,
    }))
}

/// One of the caller's documents: its status, error and chunk count.
#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents",
    security(("bearer" = []), ("password" = [])),
    params(("id" = Uuid, Path, description = "the document's id")),
    responses(
        (status = 200, description = "the document", body = DocumentView),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 404, description = "no such document among the caller's", body = ErrorResponse),
    ))]
async fn show(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<DocumentView>, ApiError> {
    let document = state.ingest.get(user.id, document_id(&id)?).await?;
    found(document).map(Json)
}

/// Deletes the document with its chunks, vectors and stored file (a running job stops).
#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "documents",
    security(("bearer" = []), ("password" = [])),
    params(("id" = Uuid, Path, description = "the document's id")),
    responses(
        (status = 204, description = "the document and everything derived from it are gone"),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 404, description = "no such document among the caller's", body = ErrorResponse),
    ))]
async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = state.ingest.delete(user.id, document_id(&id)?).await?;
    found(deleted).map(|_| StatusCode::NO_CONTENT)
}

/// Queues the document for processing again (e.g. after changing `EMBEDDING_MODEL`). Its
/// current chunks stay searchable until the new ones replace them.
#[utoipa::path(post, path = "/api/v1/documents/{id}/reindex", tag = "documents",
    security(("bearer" = []), ("password" = [])),
    params(("id" = Uuid, Path, description = "the document's id")),
    responses(
        (status = 202, description = "the document, queued again", body = DocumentView),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 404, description = "no such document among the caller's", body = ErrorResponse),
    ))]
async fn reindex(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DocumentView>), ApiError> {
    let queued = state.ingest.reindex(user.id, document_id(&id)?).await?;
    found(queued).map(|document| (StatusCode::ACCEPTED, Json(document)))
}

/// A path id that is not a UUID names no document: the same 404 as a missing one.
fn document_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("document"))
}

fn found(document: Option<Document>) -> Result<DocumentView, ApiError> {
    document
        .map(DocumentView::from)
        .ok_or_else(|| ApiError::not_found("document"))
}
