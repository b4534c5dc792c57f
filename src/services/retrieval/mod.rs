//! Retrieval: finding the chunks of a user's documents that answer a question, and the
//! citations that carry them to search results and grounded chat answers.

mod citation;
mod fusion;
mod grounding;
mod metrics;
mod mode;
mod retriever;

pub use citation::Citation;
pub use fusion::{RRF_K, reciprocal_rank_fusion, vector_weight};
pub use grounding::{merge_overlapping, retrieval_query};
pub use mode::SearchMode;
pub use retriever::{MAX_TOP_K, RetrievalError, Retriever, SearchQuery};
