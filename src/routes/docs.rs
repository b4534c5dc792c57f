//! API documentation served from the binary: `/openapi.json` (generated from the code),
//! Swagger UI at `/docs` and ReDoc at `/redoc`. No CDN, no web fonts: a browser opening them
//! sends no request off this machine, and the Content-Security-Policy makes sure of it.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::AppState;

/// The ReDoc page and bundle (the npm package `redoc`, MIT, see assets/redoc/LICENSE).
const REDOC_HTML: &str = include_str!("../../assets/redoc/index.html");
const REDOC_JS: &str = include_str!("../../assets/redoc/redoc.standalone.js");

/// Everything the documentation pages may load: themselves only (ReDoc builds styles and a
/// worker at run time, hence the inline-style and blob: allowances).
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; connect-src 'self'; \
     font-src 'self' data:; frame-ancestors 'none'";

pub fn router(openapi: OpenApi) -> Router<AppState> {
    let pages = Router::new()
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .route("/redoc", get(|| async { axum::response::Html(REDOC_HTML) }))
        .route("/redoc/redoc.standalone.js", get(redoc_js));
    pages.layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    ))
}

async fn redoc_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
}
