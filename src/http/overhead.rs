//! `x-ragd-overhead-ms`: ragd's own time in an LLM call (the whole call minus the time spent
//! waiting on the provider), on every chat answer, failed ones included, so operators can check
//! what the gateway costs.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

pub static OVERHEAD_HEADER: HeaderName = HeaderName::from_static("x-ragd-overhead-ms");

/// Milliseconds with three decimals (microseconds).
pub fn overhead_value(overhead: Duration) -> HeaderValue {
    let millis = format!("{:.3}", overhead.as_secs_f64() * 1000.0);
    HeaderValue::from_str(&millis).unwrap_or(HeaderValue::from_static("0.000"))
}

pub fn with_overhead(mut response: Response, overhead: Duration) -> Response {
    response
        .headers_mut()
        .insert(OVERHEAD_HEADER.clone(), overhead_value(overhead));
    response
}
