//! Makes every error answer the contract's shape, whoever produced it.
//!
//! Handlers return [`ApiError`], which renders itself. Framework layers (unknown route, wrong
//! method, body limit, handler timeout, caught panic) answer with a bare status: this layer
//! replaces their bodies. On `/v1` it re-renders errors in OpenAI's shape so the official SDKs
//! understand them. It also makes the request's id readable anywhere in the request's task
//! (error bodies carry it).
//!
//! A tower layer rather than `axum::middleware::from_fn` for the reason given in
//! [`super::metrics`]: no boxed future per request.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use crate::http::REQUEST_ID_HEADER;
use crate::http::error::ApiError;
use crate::http::middleware::request_id;

/// Puts every error answer from the routes it wraps in the contract's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorShapeLayer;

impl<S> Layer<S> for ErrorShapeLayer {
    type Service = ErrorShape<S>;

    fn layer(&self, inner: S) -> ErrorShape<S> {
        ErrorShape { inner }
    }
}

/// The service [`ErrorShapeLayer`] wraps a route in.
#[derive(Debug, Clone)]
pub struct ErrorShape<S> {
    inner: S,
}

impl<S, B> Service<Request> for ErrorShape<S>
where
    S: Service<Request, Response = axum::http::Response<B>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    /// The reshaping runs in the request id's scope too: error bodies carry the id.
    type Future = TaskLocalFuture<String, Shaping<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let id = request
            .headers()
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let openai_flavor = request.uri().path().starts_with("/v1/");
        let shaping = Shaping {
            inner: self.inner.call(request),
            openai_flavor,
        };
        request_id::scope(id, shaping)
    }
}

pin_project_lite::pin_project! {
    /// A route's future, its error answer reshaped when it yields one.
    pub struct Shaping<F> {
        #[pin]
        inner: F,
        openai_flavor: bool,
    }
}

impl<F, B, E> Future for Shaping<F>
where
    F: Future<Output = Result<axum::http::Response<B>, E>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.inner.poll(cx));
        Poll::Ready(outcome.map(|response| reshape(response.map(Body::new), *this.openai_flavor)))
    }
}

/// The response as the contract wants it: success and our own errors as they are, other
/// errors rendered as [`ApiError`], and on `/v1` every error in OpenAI's shape.
fn reshape(response: Response, openai_flavor: bool) -> Response {
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
            rendered
                .headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    rendered
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}
