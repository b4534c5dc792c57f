//! The request id: taken from an incoming `x-request-id` when it is sane, else a new UUIDv7;
//! echoed on the response, attached to the log span, and readable anywhere in the request's
//! task (error bodies carry it).

use axum::extract::Request;
use axum::http::HeaderValue;
use tokio::task::futures::TaskLocalFuture;
use tower_http::request_id::{MakeRequestId, RequestId};

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request this task is serving, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `future`, run with `id` as the current request id.
pub fn scope<F: Future>(id: String, future: F) -> TaskLocalFuture<String, F> {
    CURRENT.scope(id, future)
}

/// Generates ids for requests that came without a usable one.
#[derive(Clone, Copy, Default)]
pub struct MakeUuidV7;

impl MakeRequestId for MakeUuidV7 {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

/// The longest incoming id we echo; anything longer or with odd characters is replaced.
const MAX_INCOMING_LEN: usize = 128;

/// Drops an incoming `x-request-id` that is too long or not printable ASCII, so a client
/// cannot inject junk into our logs; `SetRequestIdLayer` then assigns a fresh one.
pub fn sanitize_incoming(mut request: Request) -> Request {
    let header = crate::http::REQUEST_ID_HEADER.clone();
    let acceptable = request.headers().get(&header).is_some_and(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_INCOMING_LEN
            && bytes.iter().all(|b| b.is_ascii_graphic())
    });
    if !acceptable {
        request.headers_mut().remove(&header);
    }
    request
}
