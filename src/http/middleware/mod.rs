//! Cross-cutting request handling, in the order the router applies it.

pub mod cors;
pub mod error_shape;
pub mod metrics;
pub mod rate_limit;
pub mod request_id;
