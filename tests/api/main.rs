//! ragd's integration tests: the real application over real sockets, against real SQLite,
//! PostgreSQL + pgvector and Redis (started by scripts/test.sh).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step fails the test"
)]

mod helpers;

mod auth;
mod cli;
mod docs;
mod document_store;
mod embedding_mock;
mod errors;
mod health;
mod ingest;
mod observability;
mod store;
mod ui;
