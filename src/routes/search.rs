//! Search over the caller's documents: POST /api/v1/search.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ErrorResponse, FieldError};
use crate::http::extract::{ValidJson, Validate};
use crate::services::retrieval::{Citation, MAX_TOP_K, SearchMode, SearchQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// Longest query, in characters.
const MAX_QUERY_CHARS: usize = 2000;
/// Most documents one search may be restricted to.
const MAX_DOCUMENT_IDS: usize = 100;
const DEFAULT_TOP_K: i64 = 5;

/// A search over the caller's ready documents.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SearchRequest {
    /// 1..2000 characters, not only whitespace.
    #[schema(example = "How does the borrow checker treat closures?")]
    #[serde(default)]
    pub query: String,
    /// Only these documents (at most 100); omitted or empty means all of them.
    #[serde(default)]
    pub document_ids: Option<Vec<Uuid>>,
    /// Results to return, 1..50.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 50, default = 5)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub mode: Option<SearchMode>,
}

impl Validate for SearchRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.query.trim().is_empty() {
            errors.push(FieldError::new("query", "must not be empty or blank"));
        } else if self.query.chars().count() > MAX_QUERY_CHARS {
            errors.push(FieldError::new(
                "query",
                format!("must be at most {MAX_QUERY_CHARS} characters"),
            ));
        }
        if let Some(top_k) = self.top_k
            && !(1..=i64::from(MAX_TOP_K)).contains(&top_k)
        {
            errors.push(FieldError::new(
                "top_k",
                format!("must be between 1 and {MAX_TOP_K}"),
            ));
        }
        if self
            .document_ids
            .as_ref()
            .is_some_and(|ids| ids.len() > MAX_DOCUMENT_IDS)
        {
            errors.push(FieldError::new(
                "document_ids",
                format!("must list at most {MAX_DOCUMENT_IDS} documents"),
            ));
        }
        errors
    }
}

/// The best matching chunks, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    pub results: Vec<Citation>,
    /// The mode that ranked them.
    pub mode: SearchMode,
}

/// Finds the chunks of the caller's ready documents that best match the query.
#[utoipa::path(post, path = "/api/v1/search", tag = "search",
    request_body = SearchRequest,
    security(("bearer" = []), ("password" = [])),
    responses(
        (status = 200, description = "the best matching chunks, best first", body = SearchResponse),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 422, description = "invalid query, top_k, mode or document_ids", body = ErrorResponse),
        (status = 502, description = "the embedding provider failed", body = ErrorResponse),
        (status = 504, description = "the embedding provider timed out", body = ErrorResponse),
    ))]
async fn search(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(request): ValidJson<SearchRequest>,
) -> Result<Json<SearchResponse>, ApiError> {
    let mode = request.mode.unwrap_or_default();
    let top_k = request.top_k.unwrap_or(DEFAULT_TOP_K);
    let results = state
        .retrieval
        .search(SearchQuery {
            user_id: user.id,
            text: request.query.trim(),
            document_ids: request.document_ids.as_deref().unwrap_or_default(),
            top_k: u32::try_from(top_k).unwrap_or(MAX_TOP_K),
            mode,
        })
        .await?;
    Ok(Json(SearchResponse { results, mode }))
}
