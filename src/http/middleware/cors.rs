//! CORS, applied to cross-origin requests only: those that carry an `Origin` header.
//!
//! A request without `Origin` is not a CORS request, and `Access-Control-*` headers on its
//! response would mean nothing to anyone. Its response still gets `Vary: Origin`, so that a
//! cache never hands it to a cross-origin caller that needs the CORS headers.
//!
//! Leaving them off matters beyond tidiness: `Access-Control-Expose-Headers` made the seventh
//! header of every rate-limited response, and a seventh header doubles the response's header
//! map into an allocation past the allocator's per-thread cache, on every request.

use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, Request, Response, header};
use futures::FutureExt;
use futures::future::{Either, Map};
use tower::{Layer, Service};
use tower_http::cors::{self, AllowOrigin, Any, Cors, CorsLayer};

use crate::config::Settings;
use crate::http::REQUEST_ID_HEADER;

/// CORS for the origins in `CORS_ORIGINS` (`*`: any), on cross-origin requests only.
#[derive(Clone)]
pub struct CrossOriginLayer {
    cors: CorsLayer,
}

impl CrossOriginLayer {
    pub fn new(settings: &Settings) -> Self {
        Self {
            cors: cors_layer(settings),
        }
    }
}

fn cors_layer(settings: &Settings) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            REQUEST_ID_HEADER.clone(),
        ])
        .expose_headers([
            REQUEST_ID_HEADER.clone(),
            header::RETRY_AFTER,
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
            crate::http::overhead::OVERHEAD_HEADER.clone(),
        ])
        .max_age(Duration::from_secs(3600));
    if settings.cors_origins.iter().any(|o| o == "*") {
        return layer.allow_origin(Any);
    }
    let origins: Vec<HeaderValue> = settings
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    layer.allow_origin(AllowOrigin::list(origins))
}

impl<S> Layer<S> for CrossOriginLayer {
    type Service = CrossOrigin<S>;

    fn layer(&self, inner: S) -> CrossOrigin<S> {
        CrossOrigin {
            cors: self.cors.layer(inner),
        }
    }
}

/// The service [`CrossOriginLayer`] wraps: CORS around the inner service, which requests
/// without `Origin` reach directly.
#[derive(Clone)]
pub struct CrossOrigin<S> {
    cors: Cors<S>,
}

type Respond<B, E> = fn(Result<Response<B>, E>) -> Result<Response<B>, E>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CrossOrigin<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future =
        Either<cors::ResponseFuture<S::Future>, Map<S::Future, Respond<ResBody, S::Error>>>;

    /// CORS is ready when its inner service is: one readiness serves both paths.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(header::ORIGIN) {
            Either::Left(self.cors.call(request))
        } else {
            Either::Right(
                self.cors
                    .get_mut()
                    .call(request)
                    .map(vary_origin as Respond<_, _>),
            )
        }
    }
}

fn vary_origin<B, E>(result: Result<Response<B>, E>) -> Result<Response<B>, E> {
    result.map(|mut response| {
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
        response
    })
}
