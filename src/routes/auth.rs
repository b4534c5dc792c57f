//! Accounts and credentials: register, log in (JSON or the OAuth2 password form, so Swagger
//! UI's Authorize button works), and who am I.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::{Email, Password};
use crate::http::auth::AuthUser;
use crate::http::client_ip::ClientIp;
use crate::http::error::{ApiError, ErrorResponse, FieldError};
use crate::http::extract::{ValidJson, Validate, parse_json_body};
use crate::store::User;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(token))
        .routes(routes!(me))
}

/// Credentials for a new account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// At least 8 characters, at most 1024 bytes.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

impl Validate for RegisterRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(err) = Email::parse(&self.email) {
            errors.push(FieldError::new("email", err.expected));
        }
        if let Err(err) = Password::parse(self.password.as_str()) {
            errors.push(FieldError::new("password", err.expected));
        }
        errors
    }
}

/// An account, as its owner sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// `user` or `admin`.
    #[schema(example = "user")]
    pub role: String,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            role: user.role,
            created_at: user.created_at,
        }
    }
}

/// Creates an account. Off when `ALLOW_REGISTRATION=false` (403).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "the account was created", body = UserView),
        (status = 403, description = "registration is disabled", body = ErrorResponse),
        (status = 409, description = "the email is already registered", body = ErrorResponse),
        (status = 422, description = "invalid email or password", body = ErrorResponse),
    ))]
async fn register(
    State(state): State<AppState>,
    ValidJson(request): ValidJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    // `ValidJson` has checked both; parsing again only converts them to their domain types.
    let email = Email::parse(&request.email).map_err(|e| field_error("email", e.expected))?;
    let password =
        Password::parse(request.password).map_err(|e| field_error("password", e.expected))?;
    let user = state.accounts.register(email, password).await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

fn field_error(field: &str, expected: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, expected)])
}

/// Login as JSON (`email`) or as an OAuth2 password form (`username`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenRequest {
    #[serde(alias = "username")]
    #[schema(example = "ada@example.com")]
    pub email: String,
    pub password: String,
}

/// A bearer token for `Authorization: Bearer ...`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 1800)]
    pub expires_in: u64,
}

/// The login body in either of its two encodings.
pub struct LoginBody(TokenRequest);

impl<S: Send + Sync> FromRequest<S> for LoginBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return parse_json_body(req, state).await.map(Self);
        }
        let axum::Form(form) = axum::Form::<TokenRequest>::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
                } else {
                    ApiError::validation(vec![FieldError::new("body", rejection.body_text())])
                }
            })?;
        Ok(Self(form))
    }
}

/// Exchanges an email and password for an access token.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth",
    request_body(content(
        (TokenRequest = "application/json"),
        (TokenRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "an access token", body = TokenResponse),
        (status = 401, description = "incorrect email or password", body = ErrorResponse),
        (status = 422, description = "a field is missing", body = ErrorResponse),
        (status = 429, description = "too many failed logins for this address or email", body = ErrorResponse),
    ))]
async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    LoginBody(request): LoginBody,
) -> Result<Json<TokenResponse>, ApiError> {
    // Every attempt reserves a failure for its address and its email; success gives it back.
    state.rate_limits.admit_login(ip, &request.email).await?;
    let issued = state
        .accounts
        .login(&request.email, &request.password)
        .await
        .inspect_err(|err| {
            if let Some(reason) = err.failure_reason() {
                crate::http::auth::record_failure(reason);
            }
        })?;
    state.rate_limits.login_succeeded(ip, &request.email).await;
    Ok(Json(TokenResponse {
        access_token: issued.token.expose().to_owned(),
        token_type: "bearer",
        expires_in: issued.expires_in_secs,
    }))
}

/// The caller's own account.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = []), ("password" = [])),
    responses(
        (status = 200, description = "the caller's account", body = UserView),
        (status = 401, description = "missing, invalid or expired credentials", body = ErrorResponse),
    ))]
async fn me(user: AuthUser) -> Json<UserView> {
    Json(UserView {
        id: user.id,
        email: user.email.clone(),
        role: user.role.as_str().to_owned(),
        created_at: user.created_at,
    })
}
