//! The behaviour behind the routes, independent of HTTP.

pub mod readiness;
