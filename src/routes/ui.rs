//! The web UI: static files from `ui/`, embedded in the binary at compile time (so `cargo run`
//! needs no Node and no files beside the binary), served at `/` (the page) and `/ui/...` (its
//! scripts and styles).
//!
//! Every answer carries a strict Content-Security-Policy: the page may load and talk to this
//! server only, and runs no inline script, so text from a model or a document can never become
//! code. Assets are revalidated with an ETag (their content hash) rather than cached blindly,
//! because their names are not hashed: a new binary's UI is picked up on the next load.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;
use crate::http::error::ApiError;

#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// Self only, no inline script or style, no plugins, no framing, no `<base>` tricks.
const UI_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(asset))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(UI_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// The embedded file at `path`, or 304 when the browser's copy is current, or 404.
fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return ApiError::not_found("UI asset").into_response();
    };
    let hash = file.metadata.sha256_hash();
    let etag = format!("\"{}\"", hex::encode(&hash[..16]));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let cache = [
        (header::ETAG, etag),
        (header::CACHE_CONTROL, "no-cache".to_string()),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let content_type = content_type(path, file.metadata.mimetype());
    (
        [(header::CONTENT_TYPE, content_type)],
        cache,
        file.data.into_owned(),
    )
        .into_response()
}

/// The type a browser needs to run the file (module scripts must be JavaScript), with the
/// charset for text.
fn content_type(path: &str, guessed: &str) -> String {
    let extension = path.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    let mime = match extension {
        "js" | "mjs" => "text/javascript",
        "css" => "text/css",
        "html" => "text/html",
        "svg" => "image/svg+xml",
        _ => guessed,
    };
    if mime.starts_with("text/") || mime == "image/svg+xml" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}
