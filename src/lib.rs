//! ragd: one binary that puts LLMs behind an API.
//!
//! The module tree reads like the architecture: `http` and `routes` receive requests,
//! `services` hold the behaviour, `store` and `cache` hold the state.

/// Application state, assembly from settings, serving and graceful shutdown.
pub mod app;
/// Rate limiters and key-value caches: in memory, or shared through Redis.
pub mod cache;
/// The command line.
pub mod cli;
/// The typed settings tree read from the environment.
pub mod config;
/// Validated values (email, password, role) parsed at the request boundary; no I/O.
pub mod domain;
/// Router, layers, the error catalogue and request extractors.
pub mod http;
/// The `ragd ingest` bulk-loading command.
pub mod ingest_command;
/// Thin HTTP handlers, one file per area.
pub mod routes;
/// Values that must never be logged.
pub mod secret;
/// Behaviour behind the routes.
pub mod services;
/// The JWT signing key, from settings or generated once.
pub mod signing_key;
/// Durable state: SQLite and PostgreSQL behind one set of traits.
pub mod store;
/// Logs and metrics.
pub mod telemetry;
/// The `ragd user` account-management commands.
pub mod user_command;
