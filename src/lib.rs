//! ragd: one binary that puts LLMs behind an API.
//!
//! The module tree reads like the architecture: `http` and `routes` receive requests,
//! `services` hold the behaviour, `store` and `cache` hold the state.

pub mod cache;
pub mod domain;
pub mod secret;
pub mod services;
