//! The behaviour of ragd, independent of HTTP: each service owns one area.

pub mod llm;
