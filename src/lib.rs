//! ragd: one binary that puts LLMs behind an API.
//!
//! The module tree reads like the architecture: `http` and `routes` receive requests,
//! `services` hold the behaviour, `store` and `cache` hold the state.

pub mod secret;
/// Behaviour behind the routes: LLM providers, and later chat, retrieval and ingest.
pub mod services;
