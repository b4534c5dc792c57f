//! Finding a user's chunks by meaning (vector) or by words (keyword), each backend with its
//! own index. Every filter (owner, document ids, `ready` documents, the active embedding
//! model) is applied inside the SQL, so a search returns its `limit` best allowed chunks
//! rather than trimming a global top list afterwards.

use async_trait::async_trait;
use sqlx::{Database, Encode, QueryBuilder, Type};
use uuid::Uuid;

use super::StoreError;

/// Which chunks a search may return.
#[derive(Debug, Clone, Copy)]
pub struct SearchScope<'a> {
    /// The caller: only their chunks are ever considered.
    pub user_id: Uuid,
    /// Only these documents; empty means all of the caller's documents.
    pub document_ids: &'a [Uuid],
    /// Only chunks embedded by this model (during a model change, stale chunks are skipped).
    pub embedding_model: &'a str,
}

/// One matching chunk with its document's filename and a score (higher is better).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SearchHit {
    pub document_id: Uuid,
    pub filename: String,
    pub chunk_index: i32,
    pub text: String,
    pub page: Option<i32>,
    pub char_start: i32,
    pub char_end: i32,
    /// Cosine similarity for vector search, the backend's text rank for keyword search.
    pub score: f64,
}

#[async_trait]
pub trait SearchStore {
    /// Prepares the vector index for `dimension`-wide vectors (Postgres: an HNSW index over
    /// that width); idempotent and safe for replicas starting together.
    async fn prepare_vector_index(&self, dimension: usize) -> Result<(), StoreError>;

    /// The `limit` chunks in scope nearest to `query` by cosine distance, best first.
    async fn vector_search(
        &self,
        scope: SearchScope<'_>,
        query: &[f32],
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError>;

    /// The `limit` chunks in scope ranked best for any of `terms` (see [`query_terms`]),
    /// best first. No terms, no hits.
    async fn keyword_search(
        &self,
        scope: SearchScope<'_>,
        terms: &[String],
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError>;
}

/// Query terms kept at most: enough for any real question, bounded for the index.
const MAX_TERMS: usize = 64;

/// The words of a query, lower-cased and de-duplicated: runs of letters and digits, so that
/// no character of the user's text (quotes, `*`, `-`, `:`, parentheses, `NEAR`...) ever
/// reaches a full-text query parser as syntax. Each term is later quoted.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let term = word.to_lowercase();
        if !terms.contains(&term) {
            terms.push(term);
        }
        if terms.len() == MAX_TERMS {
            break;
        }
    }
    terms
}

/// The terms as a disjunction of quoted words, e.g. `"rust" OR "borrow"`: a chunk need not
/// contain every term. `or` is the operator's spelling (`OR` for FTS5, `or` for Postgres'
/// `websearch_to_tsquery`); terms are alphanumeric, so the quotes cannot be escaped from.
pub(crate) fn any_of(terms: &[String], or: &str) -> String {
    terms
        .iter()
        .map(|term| format!("\"{term}\""))
        .collect::<Vec<_>>()
        .join(&format!(" {or} "))
}

/// Appends the scope's filters (to a query over `chunks AS c JOIN documents AS d`), the same
/// on both backends: the owner (on both tables), ready documents, the embedding model and,
/// when given, the document ids.
pub(crate) fn push_scope<DB: Database>(query: &mut QueryBuilder<DB>, scope: &SearchScope<'_>)
where
    for<'t> Uuid: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
{
    query
        .push(" c.user_id = ")
        .push_bind(scope.user_id)
        .push(" AND d.user_id = ")
        .push_bind(scope.user_id)
        .push(" AND d.status = 'ready' AND c.embedding_model = ")
        .push_bind(scope.embedding_model.to_owned());
    if !scope.document_ids.is_empty() {
        query.push(" AND c.document_id IN (");
        let mut ids = query.separated(", ");
        for id in scope.document_ids {
            ids.push_bind(*id);
        }
        query.push(")");
    }
}

/// The columns of a [`SearchHit`] except its score, from `c` (chunks) and `d` (documents).
pub(crate) const HIT_COLUMNS: &str =
    "c.document_id, d.filename, c.chunk_index, c.text, c.page, c.char_start, c.char_end";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_words_without_syntax() {
        assert_eq!(
            query_terms(r#"  "Borrow" checker* -NEAR(x) AND borrow's: 42 "#),
            ["borrow", "checker", "near", "x", "and", "s", "42"]
        );
        assert!(query_terms(r#"*"'():-^ "#).is_empty());
        assert_eq!(query_terms("Ünïcode straße"), ["ünïcode", "straße"]);
    }

    #[test]
    fn terms_are_bounded() {
        let long: String = (0..500).map(|i| format!("w{i} ")).collect();
        assert_eq!(query_terms(&long).len(), MAX_TERMS);
    }

    #[test]
    fn any_of_quotes_every_term() {
        let terms = query_terms("rust borrow");
        assert_eq!(any_of(&terms, "OR"), r#""rust" OR "borrow""#);
    }
}
