//! Makes every error answer the contract's shape, whoever produced it.
//!
//! Handlers return [`ApiError`], which renders itself. Framework layers (unknown route, wrong
//! method, body limit, handler timeout, caught panic) answer with a bare status: this
//! middleware replaces their bodies. On `/v1` it re-renders errors in OpenAI's shape so the
//! official SDKs understand them.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::REQUEST_ID_HEADER;
use crate::http::error::ApiError;
use crate::http::middleware::request_id;

pub async fn error_shape(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let openai_flavor = request.uri().path().starts_with("/v1/");
    request_id::scope(id, async move {
        let response = next.run(request).await;
        if !(response.status().is_client_error() || response.status().is_server_error()) {
            return response;
        }
        let marked = response.extensions().get::<ApiError>().cloned();
        let error = match marked {
            // A handler's ApiError: already our shape; /v1 wants OpenAI's.
            Some(error) if openai_flavor => error,
            Some(_) => return response,
            // A handler that chose its own JSON error body (e.g. readiness) keeps it.
            None if is_json(&response) => return response,
            None => {
                if response.status().is_server_error() {
                    tracing::error!(status = %response.status(), "a framework layer answered with an error");
                }
                ApiError::from_status(response.status())
            }
        };
        let mut rendered = if openai_flavor {
            let mut rendered = (error.status, axum::Json(error.openai_body())).into_response();
            rendered.headers_mut().extend(*error.headers.clone());
            rendered
        } else {
            error.into_response()
        };
        // Keep headers a layer or handler set on purpose (Allow on 405, Retry-After, CORS).
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                rendered.headers_mut().entry(name).or_insert_with(|| value.clone());
            }
        }
        rendered
    })
    .await
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}
