//! Retrieval: finding the chunks of a user's documents that answer a question, and the
//! citations that carry them to search results and grounded chat answers.

mod citation;

pub use citation::Citation;
