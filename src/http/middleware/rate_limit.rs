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
//!
//! This is a dedicated tower layer rather than `axum::middleware::from_fn_with_state`: it sits
//! on every API request, and holding only what it needs (not a clone of the whole `AppState`
//! per request) and passing unlimited routes straight through without boxing keeps
//! authentication plus limiting a small fraction of a request's cost.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::{BoxFuture, Either};
use ipnet::IpNet;
use tower::{Layer, Service};

use crate::app::AppState;
use crate::cache::RateDecision;
use crate::http::auth::{AuthUser, authenticate};
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::services::auth::accounts::Accounts;
use crate::services::rate_limits::RateLimits;

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Routes anyone may call; limited per client address instead of per user.
const PUBLIC_AUTH_ROUTES: [&str; 2] = ["/api/v1/auth/register", "/api/v1/auth/token"];

/// Whose quota a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    PerUser,
    PerAddress,
}

/// `None`: the route is never limited.
fn scope(path: &str) -> Option<Scope> {
    if PUBLIC_AUTH_ROUTES.contains(&path) {
        Some(Scope::PerAddress)
    } else if path.starts_with("/api/v1/") || path.starts_with("/v1/") {
        Some(Scope::PerUser)
    } else {
        None
    }
}

/// Authenticates and rate-limits the routes it wraps (use it as a `route_layer`).
#[derive(Clone)]
pub struct RateLimitLayer {
    gate: Arc<Gate>,
}

impl RateLimitLayer {
    pub fn new(state: &AppState) -> Self {
        Self {
            gate: Arc::new(Gate {
                accounts: state.accounts.clone(),
                rate_limits: state.rate_limits.clone(),
                trusted_proxies: state.settings.trusted_proxies.clone().into(),
            }),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] wraps a route in.
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> Service<Request> for RateLimit<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(scope) = scope(request.uri().path()) else {
            return Either::Left(self.inner.call(request));
        };
        // The service that was polled ready is the one that must be called; a fresh clone
        // stays behind for the next request.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        Either::Right(Box::pin(self.gate.clone().admit(scope, request, ready)))
    }
}

/// What the limiter needs of the application, shared by every clone of the service.
struct Gate {
    accounts: Arc<Accounts>,
    rate_limits: Arc<RateLimits>,
    trusted_proxies: Arc<[IpNet]>,
}

impl Gate {
    /// Identifies the caller, spends one request of its quota, and calls `inner`.
    ///
    /// Works on the request whole (no split into parts and back) and is boxed as it is: the
    /// future stays small enough for the allocator's per-thread cache.
    async fn admit<S>(
        self: Arc<Self>,
        scope: Scope,
        mut request: Request,
        mut inner: S,
    ) -> Result<Response, Infallible>
    where
        S: Service<Request, Response = Response, Error = Infallible>,
    {
        let checked = match scope {
            Scope::PerAddress => {
                let ip = client_ip(
                    request.headers(),
                    request.extensions(),
                    &self.trusted_proxies,
                );
                self.rate_limits.check_ip(ip).await
            }
            Scope::PerUser => {
                let user = match authenticate(request.headers(), &self.accounts).await {
                    Ok(user) => user,
                    Err(err)
                        if err.status != StatusCode::UNAUTHORIZED
                            || !request.headers().contains_key(AUTHORIZATION) =>
                    {
                        return Ok(err.into_response());
                    }
                    Err(err) => {
                        // A credential that fails spends its address's quota, so guessing
                        // them (each a database lookup) is limited like the public routes.
                        // A request with none costs nothing and stays a plain 401.
                        let ip = client_ip(
                            request.headers(),
                            request.extensions(),
                            &self.trusted_proxies,
                        );
                        if let Err(refusal) = self.rate_limits.check_ip(ip).await {
                            count_limited(request.extensions().get::<MatchedPath>());
                            return Ok(ApiError::from(refusal).into_response());
                        }
                        return Ok(err.into_response());
                    }
                };
                let checked = self.rate_limits.check_user(user.id).await;
                request.extensions_mut().insert::<AuthUser>(user);
                checked
            }
        };
        Ok(match checked {
            Ok(decision) => {
                let route = request.extensions().get::<MatchedPath>().cloned();
                let Ok(mut response) = inner.call(request).await;
                // Refused by a limit the handler applies itself (failed logins, tokens a
                // minute): counted like the layer's own refusals, and quota headers it set,
                // which describe that limit, stand.
                let own_quota = response.status() == StatusCode::TOO_MANY_REQUESTS && {
                    count_limited(route.as_ref());
                    response.headers().contains_key(&LIMIT)
                };
                if let Some(decision) = decision
                    && !own_quota
                {
                    insert_quota_headers(response.headers_mut(), &decision);
                }
                response
            }
            Err(refusal) => {
                count_limited(request.extensions().get::<MatchedPath>());
                ApiError::from(refusal).into_response()
            }
        })
    }
}

/// `rate_limited_requests_total{route}`: every 429 ragd answers, whichever limit refused.
fn count_limited(route: Option<&MatchedPath>) {
    let route = route.map_or("unmatched", MatchedPath::as_str).to_owned();
    metrics::counter!("rate_limited_requests_total", "route" => route).increment(1);
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
