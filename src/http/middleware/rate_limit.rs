//! Rate limits at the edge of the API, applied to matched routes only (an unknown path stays a
//! 404, not a 401 or a 429):
//! - authenticated routes under `/api/v1` and `/v1`: the caller is authenticated here, once
//!   (the [`AuthUser`] is left in the request's extensions for the handler's extractor), and
//!   counted against their per-user quota;
//! - the unauthenticated auth routes (register, token): counted per client address;
//! - everything else (`/health*`, `/metrics`, the docs, the UI): never limited.
//!
//! Every limited response carries `x-ratelimit-limit`, `x-ratelimit-remaining` and
//! `x-ratelimit-reset`; a refusal is 429 with `Retry-After`.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::cache::RateDecision;
use crate::http::auth::{AuthUser, authenticate};
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Routes anyone may call; limited per client address instead of per user.
const PUBLIC_AUTH_ROUTES: [&str; 2] = ["/api/v1/auth/register", "/api/v1/auth/token"];

enum Scope {
    PerUser,
    PerAddress,
    Unlimited,
}

fn scope(path: &str) -> Scope {
    if PUBLIC_AUTH_ROUTES.contains(&path) {
        Scope::PerAddress
    } else if path.starts_with("/api/v1/") || path.starts_with("/v1/") {
        Scope::PerUser
    } else {
        Scope::Unlimited
    }
}

pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let checked = match scope(parts.uri.path()) {
        Scope::Unlimited => return next.run(Request::from_parts(parts, body)).await,
        Scope::PerAddress => {
            let ip = client_ip(&parts, &state.settings.trusted_proxies);
            state.rate_limits.check_ip(ip).await
        }
        Scope::PerUser => {
            let user = match authenticate(&parts, &state).await {
                Ok(user) => user,
                Err(err) => return err.into_response(),
            };
            let checked = state.rate_limits.check_user(user.id).await;
            parts.extensions.insert::<AuthUser>(user);
            checked
        }
    };
    match checked {
        Ok(decision) => {
            let mut response = next.run(Request::from_parts(parts, body)).await;
            if let Some(decision) = decision {
                insert_quota_headers(response.headers_mut(), &decision);
            }
            response
        }
        Err(refusal) => {
            let route = parts
                .extensions
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str)
                .to_owned();
            metrics::counter!("rate_limited_requests_total", "route" => route).increment(1);
            ApiError::from(refusal).into_response()
        }
    }
}

/// Sets `x-ratelimit-limit`, `-remaining` and `-reset` (whole seconds until fully restored).
pub fn insert_quota_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    headers.insert(LIMIT.clone(), HeaderValue::from(decision.limit));
    headers.insert(REMAINING.clone(), HeaderValue::from(decision.remaining));
    headers.insert(
        RESET.clone(),
        HeaderValue::from(whole_seconds(decision.reset_after)),
    );
}

/// Rounded up: waiting the advertised time must be enough.
pub fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}
