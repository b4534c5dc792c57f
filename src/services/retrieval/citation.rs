//! The unit of evidence ragd shows users: one chunk of one of their documents, with where it
//! sits in that document and how well it matched.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A retrieved chunk, as search results and chat answers cite it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Citation {
    pub document_id: Uuid,
    /// The document's (sanitized) original filename.
    pub filename: String,
    /// Position of the chunk within its document, from 0.
    pub chunk_index: i64,
    /// The chunk's text, as it was given to the model.
    pub text: String,
    /// Relevance: higher is better. Its scale depends on the search mode (cosine similarity,
    /// BM25, or reciprocal-rank fusion).
    pub score: f64,
    /// 1-based page number in formats that have pages (PDF); null otherwise.
    pub page: Option<i64>,
    /// Start of the chunk in the document's extracted text, in characters.
    pub char_start: i64,
    /// End (exclusive) of the chunk in the document's extracted text, in characters.
    pub char_end: i64,
}
