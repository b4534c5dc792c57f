//! API keys: create (the key is shown once), list, revoke. Keys belong to the caller; another
//! user's key id answers 404 as if it did not exist.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::AuthUser;
use crate::http::error::{ApiError, ErrorResponse, FieldError};
use crate::http::extract::{ValidJson, Validate};
use crate::store::ApiKey;

/// Longest accepted key name, in characters.
const MAX_NAME_CHARS: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
}

/// A label for a new key, so its owner can tell keys apart.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateApiKeyRequest {
    /// 1 to 100 characters, not only spaces, no control characters.
    #[schema(example = "laptop scripts")]
    pub name: String,
}

impl Validate for CreateApiKeyRequest {
    fn validate(&self) -> Vec<FieldError> {
        let name = self.name.trim();
        if name.is_empty() {
            vec![FieldError::new("name", "must not be empty")]
        } else if name.chars().count() > MAX_NAME_CHARS {
            vec![FieldError::new(
                "name",
                format!("must be at most {MAX_NAME_CHARS} characters"),
            )]
        } else if name.chars().any(char::is_control) {
            // A label is one line of text; PostgreSQL also refuses NUL in text.
            vec![FieldError::new(
                "name",
                "must not contain control characters",
            )]
        } else {
            Vec::new()
        }
    }
}

/// A new key. `key` is shown this once; only its hash is kept.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKeyView {
    pub id: Uuid,
    pub name: String,
    #[schema(example = "rk_3f9a0c1e...")]
    pub key: String,
    pub created_at: DateTime<Utc>,
}

/// A key as listed: its prefix, never the key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    #[schema(example = "rk_3f9a0c1e")]
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Updated every few seconds, not on every request.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// Creates an API key for the caller, to use as `Authorization: Bearer rk_...`.
#[utoipa::path(post, path = "/api/v1/auth/api-keys", tag = "auth",
    security(("bearer" = []), ("password" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "the key, shown once", body = CreatedApiKeyView),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 409, description = "the caller already has 100 keys", body = ErrorResponse),
        (status = 422, description = "invalid name", body = ErrorResponse),
    ))]
async fn create_api_key(
    State(state): State<AppState>,
    user: AuthUser,
    ValidJson(request): ValidJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKeyView>), ApiError> {
    let created = state
        .accounts
        .create_api_key(user.id, request.name.trim())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyView {
            id: created.key.id,
            name: created.key.name,
            key: created.secret.expose().to_owned(),
            created_at: created.key.created_at,
        }),
    ))
}

/// The caller's API keys, oldest first.
#[utoipa::path(get, path = "/api/v1/auth/api-keys", tag = "auth",
    security(("bearer" = []), ("password" = [])),
    responses(
        (status = 200, description = "the caller's keys", body = ApiKeyList),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
    ))]
async fn list_api_keys(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<ApiKeyList>, ApiError> {
    let keys = state.accounts.list_api_keys(user.id).await?;
    Ok(Json(ApiKeyList {
        items: keys.into_iter().map(ApiKeyView::from).collect(),
    }))
}

/// Revokes one of the caller's API keys: refused from the next request on, on every replica.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", tag = "auth",
    security(("bearer" = []), ("password" = [])),
    params(("id" = Uuid, Path, description = "the key's id")),
    responses(
        (status = 204, description = "revoked"),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
        (status = 404, description = "the caller has no such key", body = ErrorResponse),
    ))]
async fn revoke_api_key(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.accounts.revoke_api_key(user.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
