//! The HTTP surface: the router with its layers, the error catalogue, request extractors
//! and middleware. Routes themselves live in `crate::routes`.

pub mod auth;
pub mod client_ip;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod overhead;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode, header};
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::app::AppState;
use crate::config::Settings;
use crate::http::error::ApiError;
use crate::routes;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: every route, the docs, and the layers every request passes.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    // Matched API routes only: metrics, docs and unknown paths are never limited.
    let limits = middleware::rate_limit::RateLimitLayer::new(&state);
    let api = routes::api_router()
        .route_layer(limits.clone())
        .route_layer(handler_timeout(settings.request_timeout));
    // An upload's body may take long to arrive: the upload as a whole has its own, longer
    // bound (408 past it), and its route ends it when the body pauses (see the route).
    let upload = routes::documents::upload::router()
        .route_layer(limits)
        .route_layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.upload_timeout,
        ));
    let (app, openapi) = api.merge(upload).split_for_parts();
    let mut pages = routes::ui::router();
    if settings.metrics_enabled {
        pages = pages.merge(routes::metrics::router());
    }
    if settings.docs_enabled {
        pages = pages.merge(routes::docs::router(openapi));
    }
    let pages = pages.route_layer(handler_timeout(settings.request_timeout));
    apply_layers(app.merge(pages).with_state(state), &settings)
}

/// Bounds the time a request takes to its response head, authentication and handler
/// included (`REQUEST_TIMEOUT_SECONDS`): past it the request is dropped and the answer is 503.
/// Applied per route, not around the whole router, because the upload is timed otherwise.
fn handler_timeout(limit: std::time::Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limit)
}

/// Wraps routes in the layers every request passes: request id, logs, error shape, metrics,
/// CORS, panic catching and body limit. Public so tests can put the same stack around routes
/// of their own.
pub fn apply_layers(routes: Router, settings: &Settings) -> Router {
    routes
        .fallback(|| async { ApiError::from_status(StatusCode::NOT_FOUND) })
        .layer(middleware::metrics::RecordLayer)
        .layer(DefaultBodyLimit::max(settings.max_request_body_bytes))
        .layer(
            // Outermost first: every request gets an id before anything can fail or log.
            ServiceBuilder::new()
                .map_request(middleware::request_id::sanitize_incoming)
                // Credentials arrive in requests only; marking them sensitive keeps them out of
                // logs. (The response-side layer would reserve a header slot per name on every
                // response, growing a full header map for headers that are never there.)
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                ]))
                .layer(SetRequestIdLayer::new(
                    REQUEST_ID_HEADER.clone(),
                    middleware::request_id::MakeUuidV7,
                ))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER.clone()))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_request(())
                        .on_response(
                            DefaultOnResponse::new()
                                .level(tracing::Level::INFO)
                                .latency_unit(LatencyUnit::Micros),
                        ),
                )
                .layer(middleware::error_shape::ErrorShapeLayer)
                .layer(middleware::cors::CrossOriginLayer::new(settings))
                .layer(CatchPanicLayer::new()),
        )
}

/// The log span of one request: id, method and path; the response event adds status and
/// latency. (The span opens before routing, so it names the path, not the route template.)
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", request_id, method = %request.method(), path = request.uri().path())
}
