//! Behaviour behind the routes: each submodule owns one area and knows nothing about HTTP.

pub mod embeddings;
pub mod ingest;
