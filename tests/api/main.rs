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
mod chat;
mod cli;
mod docs;
mod document_store;
mod documents;
mod embedding_mock;
mod errors;
mod health;
mod ingest;
mod llm_mock;
mod native_providers;
mod observability;
mod openai_compat;
mod openai_node_sdk;
mod openai_options;
mod openai_sdk;
mod rag;
mod rate_limits;
mod search;
mod search_index;
mod shutdown;
mod store;
mod tool_calls;
mod ui;
mod user_cli;
