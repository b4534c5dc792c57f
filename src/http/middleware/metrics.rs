//! Request metrics: `http_requests_total{method,route,status}` and the
//! `http_request_duration_seconds` histogram, labelled by route template (never the raw path)
//! and by standard method name (never a method the client made up): either would let clients
//! create unbounded label values.
//!
//! A tower layer rather than `axum::middleware::from_fn`: it is on every request, and its
//! future wraps the route's in place instead of boxing another per request (which, held by
//! each of thousands of open streams waiting for their first token, adds up).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use tower::{Layer, Service};

/// Records the metrics of every request through the routes it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordLayer;

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record { inner }
    }
}

/// The service [`RecordLayer`] wraps a route in.
#[derive(Debug, Clone)]
pub struct Record<S> {
    inner: S,
}

impl<S> Service<Request> for Record<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Recording<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Recording<S::Future> {
        let labels = Labels {
            method: method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
        };
        Recording {
            inner: self.inner.call(request),
            started: Instant::now(),
            labels: Some(labels),
        }
    }
}

/// What a request is counted under, taken before the request is handed on.
struct Labels {
    method: &'static str,
    route: Option<MatchedPath>,
}

pin_project_lite::pin_project! {
    /// A route's future, recorded when it yields the response head.
    pub struct Recording<F> {
        #[pin]
        inner: F,
        started: Instant,
        labels: Option<Labels>,
    }
}

impl<F, E> Future for Recording<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(labels)) = (&outcome, this.labels.take()) {
            let route = labels
                .route
                .as_ref()
                .map_or("unmatched", MatchedPath::as_str)
                .to_owned();
            let status = response.status().as_u16().to_string();
            let method = labels.method;
            metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
                .increment(1);
            metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
                .record(this.started.elapsed().as_secs_f64());
        }
        Poll::Ready(outcome)
    }
}

/// HTTP's own methods, the only ones with a label of their own.
static STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];

/// The method's label: one of HTTP's own methods, or "other" for an extension method.
fn method_label(method: &Method) -> &'static str {
    STANDARD_METHODS
        .iter()
        .find(|standard| *standard == method)
        .map_or("other", Method::as_str)
}
