//! Behaviour: what ragd does, independent of HTTP and of which store or cache backs it.

pub mod auth;
pub mod chat;
pub mod embeddings;
pub mod ingest;
pub mod llm;
pub mod rate_limits;
pub mod readiness;
pub mod retrieval;
