//! ragd's integration tests: the real application over real sockets, against real SQLite,
//! PostgreSQL + pgvector and Redis (started by scripts/test.sh).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step fails the test"
)]

mod helpers;

mod api_keys;
mod auth;
mod cli;
mod docs;
mod document_store;
mod documents;
mod embedding_mock;
mod errors;
mod health;
mod ingest;
mod observability;
mod rate_limits;
mod store;
mod ui;
