//! The one authenticated-user extractor. Every protected handler takes an [`AuthUser`]; there
//! is no other way for a handler to learn who is calling, so none can forget to check.
//!
//! Tenancy: pass `user.id` to every store method that touches user-owned data. The store
//! filters by it in SQL, so another user's object is "not found" (404), never leaked.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::services::auth::accounts::{Accounts, Principal};

/// The caller of a protected route: `user.id`, `user.email`, `user.role`.
///
/// Shared, not copied: the principal comes out of the credential cache, goes into the
/// request's extensions and out again to the handler on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser(Arc<Principal>);

impl Deref for AuthUser {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A layer that already authenticated this request (to rate-limit it) left the answer.
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let user = authenticate(&parts.headers, &state.accounts).await?;
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// Reads the bearer token and resolves it to its user, counting every refusal by reason.
pub async fn authenticate(headers: &HeaderMap, accounts: &Accounts) -> Result<AuthUser, ApiError> {
    let token = bearer_token(headers).ok_or_else(|| {
        record_failure("missing");
        ApiError::unauthorized("missing bearer token: send `Authorization: Bearer <token>`")
    })?;
    match accounts.authenticate(token).await {
        Ok(principal) => Ok(AuthUser(principal)),
        Err(err) => {
            if let Some(reason) = err.failure_reason() {
                record_failure(reason);
            }
            Err(err.into())
        }
    }
}

/// Counts a refused credential in `auth_failures_total{reason}`.
pub fn record_failure(reason: &'static str) {
    metrics::counter!("auth_failures_total", "reason" => reason).increment(1);
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
