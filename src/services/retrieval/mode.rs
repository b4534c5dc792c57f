//! How a search ranks chunks.

use serde::{Deserialize, Serialize};

/// `hybrid` fuses the vector and keyword rankings (reciprocal rank fusion, k = 60); `vector`
/// ranks by cosine similarity of embeddings; `keyword` by BM25 over the query's terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    #[default]
    Hybrid,
    Vector,
    Keyword,
}

impl SearchMode {
    /// The wire spelling, also the metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hybrid => "hybrid",
            Self::Vector => "vector",
            Self::Keyword => "keyword",
        }
    }
}
