//! Cross-cutting request handling, in the order the router applies it.

pub mod error_shape;
pub mod metrics;
pub mod request_id;
