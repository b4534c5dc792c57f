//! Search on the embedded backend. Vector: the in-process index ([`super::index`]) picks a
//! few candidates per result by a quantized scan, and sqlite-vec ranks those by exact cosine
//! distance (the whole scope when the user's chunks exceed the index's budget). Keyword:
//! BM25 over the query's words less English stop words, ranked by the in-process index (by
//! FTS5 when the user's chunks exceed its budget).
//!
//! Both rank chunk ids in an inner query and read the texts of the `limit` winners only,
//! instead of carrying every candidate's text through the sort.

use async_trait::async_trait;
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use super::stop_words::without_stop_words;
use crate::store::search::{HIT_COLUMNS, SearchHit, SearchScope, SearchStore, any_of, push_scope};
use crate::store::{StoreError, chunks::vector_to_blob};

/// Candidates the quantized scan passes to the exact re-ranking beyond the `limit` asked:
/// quantization only swaps near-equal scores, so the exact best are among the first few
/// beyond (recall@10, and hybrid's 40 per list, measured in benches/retrieval.rs). Each
/// candidate costs a row read and an exact cosine in SQLite (10-15 µs).
const CANDIDATE_MARGIN: usize = 30;

/// Rows FTS5 ranks on its own before the scope's filters, per result and at least (see
/// [`keyword_query`]).
const KEYWORD_CANDIDATES_PER_RESULT: u32 = 10;
const MIN_KEYWORD_CANDIDATES: u32 = 100;

/// Opens a query whose inner part (pushed next) yields `(id, distance)` rows, lowest distance
/// best; `score` turns `ranked.distance` into a higher-is-better score.
fn ranked_query(score: &str) -> QueryBuilder<Sqlite> {
    QueryBuilder::new(format!("SELECT {HIT_COLUMNS}, {score} AS score FROM ("))
}

/// Closes [`ranked_query`]: the winners' columns, best first.
fn close_ranked(sql: &mut QueryBuilder<Sqlite>, limit: u32) {
    sql.push(" ORDER BY distance, c.document_id, c.chunk_index LIMIT ")
        .push_bind(i64::from(limit))
        .push(
            ") AS ranked JOIN chunks AS c ON c.id = ranked.id \
             JOIN documents AS d ON d.id = c.document_id \
             ORDER BY ranked.distance, c.document_id, c.chunk_index",
        );
}

/// The keyword query for `matching` (an FTS5 expression). With a `bound`, FTS5 ranks alone
/// (no join per match) and keeps its best `bound` rows, of which the scope's best `limit` are
/// taken: the same hits as ranking every match in scope whenever `limit` of them are in scope
/// (up to the order of equal scores), at half the cost. Without, every match in scope is
/// ranked; CROSS JOIN then fixes the full-text index as the outer loop (the other way round,
/// SQLite may run the whole MATCH once per chunk of the user). bm25() is lower-is-better.
fn keyword_query(
    scope: SearchScope<'_>,
    matching: &str,
    limit: u32,
    bound: Option<u32>,
) -> QueryBuilder<Sqlite> {
    let mut sql = ranked_query("-ranked.distance");
    match bound {
        Some(bound) => sql
            .push(
                "SELECT c.id, top.distance AS distance FROM (SELECT rowid AS id, \
                 bm25(chunks_fts) AS distance FROM chunks_fts WHERE chunks_fts MATCH ",
            )
            .push_bind(matching.to_owned())
            .push(" ORDER BY distance LIMIT ")
            .push_bind(i64::from(bound))
            .push(
                ") AS top CROSS JOIN chunks AS c ON c.id = top.id \
                 CROSS JOIN documents AS d ON d.id = c.document_id WHERE",
            ),
        None => sql
            .push(
                "SELECT c.id, bm25(chunks_fts) AS distance FROM chunks_fts \
                 CROSS JOIN chunks AS c ON c.id = chunks_fts.rowid \
                 CROSS JOIN documents AS d ON d.id = c.document_id WHERE chunks_fts MATCH ",
            )
            .push_bind(matching.to_owned())
            .push(" AND"),
    };
    push_scope(&mut sql, &scope);
    close_ranked(&mut sql, limit);
    sql
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn prepare_vector_index(&self, _dimension: usize) -> Result<(), StoreError> {
        // The in-process index is built per user, on their first search: nothing up front.
        Ok(())
    }

    async fn vector_search(
        &self,
        scope: SearchScope<'_>,
        query: &[f32],
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let count = (limit as usize).saturating_add(CANDIDATE_MARGIN);
        let candidates = self
            .index
            .candidates(&self.pool, scope, query, count)
            .await?;
        let mut sql = ranked_query("1.0 - ranked.distance");
        sql.push("SELECT c.id, vec_distance_cosine(c.embedding, ")
            .push_bind(vector_to_blob(query))
            .push(
                ") AS distance FROM chunks AS c JOIN documents AS d ON d.id = c.document_id WHERE",
            );
        push_scope(&mut sql, &scope);
        if let Some(ids) = candidates {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            sql.push(" AND c.id IN (");
            let mut list = sql.separated(", ");
            for id in ids {
                list.push_bind(id);
            }
            sql.push(")");
        }
        close_ranked(&mut sql, limit);
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn keyword_search(
        &self,
        scope: SearchScope<'_>,
        terms: &[String],
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        let terms = without_stop_words(terms);
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        if let Some(ranked) = self
            .index
            .keyword_ranking(&self.pool, scope, &terms, limit as usize)
            .await?
        {
            return self.ranked_hits(scope, &ranked, limit).await;
        }
        let matching = any_of(&terms, "OR");
        let bound = limit
            .saturating_mul(KEYWORD_CANDIDATES_PER_RESULT)
            .max(MIN_KEYWORD_CANDIDATES);
        let hits = keyword_query(scope, &matching, limit, Some(bound))
            .build_query_as()
            .fetch_all(&self.pool)
            .await?;
        if hits.len() >= limit as usize {
            return Ok(hits);
        }
        // Fewer than `limit` of the best matches are in scope (another user's chunks ranked
        // higher, or there are few matches): rank every match in scope.
        Ok(keyword_query(scope, &matching, limit, None)
            .build_query_as()
            .fetch_all(&self.pool)
            .await?)
    }
}

impl SqliteStore {
    /// The hits of chunks the in-process index ranked, as `(id, score)`, best first. The scope
    /// is applied again in SQL: the index is a cache, the database is what says what the
    /// caller may see.
    async fn ranked_hits(
        &self,
        scope: SearchScope<'_>,
        ranked: &[(i64, f64)],
        limit: u32,
    ) -> Result<Vec<SearchHit>, StoreError> {
        if ranked.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = ranked_query("-ranked.distance");
        sql.push("SELECT c.id, scored.column2 AS distance FROM (VALUES ");
        let mut rows = sql.separated(", ");
        for &(id, score) in ranked {
            rows.push("(")
                .push_bind_unseparated(id)
                .push_unseparated(", ")
                .push_bind_unseparated(-score)
                .push_unseparated(")");
        }
        sql.push(
            ") AS scored CROSS JOIN chunks AS c ON c.id = scored.column1 \
             CROSS JOIN documents AS d ON d.id = c.document_id WHERE",
        );
        push_scope(&mut sql, &scope);
        close_ranked(&mut sql, limit);
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }
}
