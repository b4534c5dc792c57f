//! The embedded backend's in-process search index: each user's searchable chunks held in
//! memory, their vectors quantized to 8 bits and their texts inverted, both scanned whole on
//! every search (no graph, no clustering, no early termination, so no recall lost to the
//! index structure). Vector candidates are re-ranked exactly by the caller; keyword scores
//! are FTS5's BM25, computed here ([`keywords`]).
//!
//! A user's chunks are read from SQLite on their first search and kept in an LRU bounded by a
//! byte budget (`SEARCH_INDEX_MEMORY_MB`). Before each use, one indexed read of the user's
//! search generation (kept by triggers, so writes by any process count) says whether the copy
//! is current; when it is not, only the documents whose chunk set changed are read again. A
//! user whose index would not fit the budget is searched by SQLite alone (sqlite-vec's exact
//! scan, FTS5). Concurrent searches that find a user's copy missing or stale wait for one
//! read rather than each reading the same chunks (about a second and tens of MB at 100k).

mod keywords;
mod load;
mod quantized;
mod terms;
mod top;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::store::{SearchScope, StoreError};
use keywords::{DocumentKeywords, Ranked, best};
use quantized::{DocumentVectors, Query, nearest, row_bytes};
use terms::Terms;

/// One searchable document's chunks, indexed both ways (the same chunk order in each).
#[derive(Debug)]
struct IndexedDocument {
    document_id: Uuid,
    /// Identifies the document's chunk set (see the loader): unchanged version, unchanged rows.
    version: i64,
    vectors: DocumentVectors,
    keywords: DocumentKeywords,
}

impl IndexedDocument {
    fn bytes(&self) -> usize {
        self.vectors.bytes() + self.keywords.bytes()
    }
}

/// One user's searchable chunks as of `generation`; `documents` is empty and `oversized` set
/// when they do not fit the budget (remembered, so that each search does not read them again
/// to find out).
#[derive(Debug)]
struct UserIndex {
    generation: i64,
    model: String,
    dimension: usize,
    /// Shared with the copy this one refreshed: unchanged documents are not copied.
    documents: Vec<Arc<IndexedDocument>>,
    oversized: bool,
    bytes: usize,
}

impl UserIndex {
    fn is_current(&self, generation: i64, model: &str) -> bool {
        self.generation == generation && self.model == model
    }
}

/// Runs `work` on the blocking pool: CPU-bound steps of milliseconds or more stay off the
/// async workers. A panic in `work` resumes here.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Ok(done),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Cancelled: the runtime is shutting down.
        Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
    }
}

/// A search's place in line to read one user's chunks. Dropping it (also when the search
/// is abandoned mid-way) removes the user's entry once no other search holds it.
struct ReadingGate<'a> {
    index: &'a SearchIndex,
    user_id: Uuid,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for ReadingGate<'_> {
    fn drop(&mut self) {
        let mut reading = self.index.reading_lock();
        // The map's reference and this one: nobody else is waiting.
        if Arc::strong_count(&self.gate) == 2 {
            reading.remove(&self.user_id);
        }
    }
}

/// The cached users, least recently searched first out.
struct Users {
    lru: LruCache<Uuid, Arc<UserIndex>>,
    bytes: usize,
}

/// Per-user search indexes of one SQLite store, within a memory budget.
pub struct SearchIndex {
    budget: usize,
    users: Mutex<Users>,
    /// One gate per user whose chunks are being read; removed by the last one through it.
    reading: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Reads of a user's chunks from SQLite, for tests.
    #[cfg(test)]
    reads: std::sync::atomic::AtomicUsize,
}

impl SearchIndex {
    /// An empty index that keeps at most `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            users: Mutex::new(Users {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            reading: Mutex::default(),
            #[cfg(test)]
            reads: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The ids of the `count` chunks in `scope` whose vectors are nearest to `query` by the
    /// quantized scan, best first; `None` when the user's chunks exceed the budget (the
    /// caller then scans exactly in SQLite).
    pub async fn candidates(
        &self,
        pool: &SqlitePool,
        scope: SearchScope<'_>,
        query: &[f32],
        count: usize,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let query = Query::new(query);
        self.scan(pool, scope, move |documents| {
            let vectors: Vec<&DocumentVectors> = documents
                .iter()
                .filter(|(_, in_scope)| *in_scope)
                .map(|(d, _)| &d.vectors)
                .collect();
            nearest(&vectors, &query, count)
        })
        .await
    }

    /// The `count` chunks in `scope` ranked best by BM25 for any of `words` (see
    /// [`keywords`]), best first with their scores; `None` when the user's chunks exceed the
    /// budget (the caller then asks FTS5).
    pub async fn keyword_ranking(
        &self,
        pool: &SqlitePool,
        scope: SearchScope<'_>,
        words: &[String],
        count: usize,
    ) -> Result<Option<Vec<(i64, f64)>>, StoreError> {
        let mut terms = Terms::default();
        // Words are runs of letters and digits (`query_terms`): one term each. Two words of
        // one stem ("debug", "debugging") stay two terms, as they are two phrases to FTS5,
        // whose BM25 then counts that stem twice.
        let query: Vec<terms::Term> = words.iter().map(|word| terms.term(word)).collect();
        self.scan(pool, scope, move |documents| {
            let ranked: Vec<Ranked<'_>> = documents
                .iter()
                .map(|(d, in_scope)| Ranked {
                    keywords: &d.keywords,
                    ids: d.vectors.ids(),
                    in_scope: *in_scope,
                })
                .collect();
            best(&ranked, &query, count)
        })
        .await
    }

    /// Runs `scan` over the user's current documents, each with whether `scope` allows it,
    /// off the async workers (milliseconds of CPU at 100k chunks); `None` when the user's
    /// chunks exceed the budget.
    async fn scan<T: Send + 'static>(
        &self,
        pool: &SqlitePool,
        scope: SearchScope<'_>,
        scan: impl FnOnce(&[(&IndexedDocument, bool)]) -> T + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let user = self
            .current(pool, scope.user_id, scope.embedding_model)
            .await?;
        if user.oversized {
            return Ok(None);
        }
        let only: Vec<Uuid> = scope.document_ids.to_vec();
        let scanned = blocking(move || {
            let documents: Vec<(&IndexedDocument, bool)> = user
                .documents
                .iter()
                .map(|d| (d.as_ref(), only.is_empty() || only.contains(&d.document_id)))
                .collect();
            scan(&documents)
        });
        Ok(Some(scanned.await?))
    }

    /// The user's index as of now: the cached copy when its generation is current, else a
    /// refreshed one (cached in turn).
    async fn current(
        &self,
        pool: &SqlitePool,
        user_id: Uuid,
        model: &str,
    ) -> Result<Arc<UserIndex>, StoreError> {
        if let Some(current) = self.cached_current(pool, user_id, model).await? {
            return Ok(current);
        }
        let gate = self.gate(user_id);
        let _reading = gate.gate.lock().await;
        // Whoever held the gate before may have just read what this search needs.
        if let Some(current) = self.cached_current(pool, user_id, model).await? {
            return Ok(current);
        }
        self.read_and_keep(pool, user_id, model).await
    }

    /// The cached copy, if there is one and its generation is current.
    async fn cached_current(
        &self,
        pool: &SqlitePool,
        user_id: Uuid,
        model: &str,
    ) -> Result<Option<Arc<UserIndex>>, StoreError> {
        let Some(cached) = self.lock().lru.get(&user_id).cloned() else {
            return Ok(None);
        };
        let generation = load::generation(&mut *pool.acquire().await?, user_id).await?;
        Ok(cached.is_current(generation, model).then_some(cached))
    }

    /// Reads the user's chunks (refreshing the cached copy when there is one) and caches them.
    async fn read_and_keep(
        &self,
        pool: &SqlitePool,
        user_id: Uuid,
        model: &str,
    ) -> Result<Arc<UserIndex>, StoreError> {
        #[cfg(test)]
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cached = self.lock().lru.peek(&user_id).cloned();
        let fresh = Arc::new(
            self.refresh(pool, user_id, model, cached.as_deref())
                .await?,
        );
        self.keep(user_id, fresh.clone());
        Ok(fresh)
    }

    /// Reads the user's chunks, reusing `previous`'s documents whose version is unchanged; an
    /// oversized index (reading no chunk) when their vectors alone would exceed the budget, or
    /// when everything read does.
    async fn refresh(
        &self,
        pool: &SqlitePool,
        user_id: Uuid,
        model: &str,
        previous: Option<&UserIndex>,
    ) -> Result<UserIndex, StoreError> {
        // One read transaction: the generation and the rows come from the same snapshot, so
        // a write committed meanwhile makes the next search refresh again.
        let mut tx = pool.begin().await?;
        let generation = load::generation(&mut tx, user_id).await?;
        let dimension = load::dimension(&mut tx, user_id, model).await?.unwrap_or(0);
        let versions = load::versions(&mut tx, user_id, model).await?;
        let oversized = UserIndex {
            generation,
            model: model.to_owned(),
            dimension,
            documents: Vec::new(),
            oversized: true,
            bytes: 0,
        };
        let rows = versions
            .iter()
            .map(|v| usize::try_from(v.chunks).unwrap_or(usize::MAX))
            .fold(0, usize::saturating_add);
        if row_bytes(rows, dimension) > self.budget {
            return Ok(oversized);
        }
        let reusable: HashMap<(Uuid, i64), &Arc<IndexedDocument>> = previous
            .filter(|p| p.model == model && p.dimension == dimension)
            .map(|p| {
                p.documents
                    .iter()
                    .map(|d| ((d.document_id, d.version), d))
                    .collect()
            })
            .unwrap_or_default();
        let mut documents = Vec::with_capacity(versions.len());
        let mut changed = Vec::new();
        for version in versions {
            match reusable.get(&(version.document_id, version.version)) {
                Some(&kept) => documents.push(kept.clone()),
                None => changed.push(version),
            }
        }
        let read = load::documents(&mut tx, user_id, model, &changed, dimension).await?;
        tx.commit().await?;
        documents.extend(read.into_iter().map(Arc::new));
        // Keyword ties go in document order: the order of ids SQL breaks them by.
        documents.sort_unstable_by_key(|d| d.document_id);
        let bytes = documents.iter().map(|d| d.bytes()).sum();
        if bytes > self.budget {
            return Ok(oversized);
        }
        Ok(UserIndex {
            documents,
            oversized: false,
            bytes,
            ..oversized
        })
    }

    /// Caches `fresh` as the user's copy, unless a newer one got there first, then evicts the
    /// least recently searched users until the cache fits its budget.
    fn keep(&self, user_id: Uuid, fresh: Arc<UserIndex>) {
        let mut users = self.lock();
        let newer_cached = users
            .lru
            .peek(&user_id)
            .is_some_and(|cached| cached.generation > fresh.generation);
        if newer_cached {
            return;
        }
        users.bytes += fresh.bytes;
        if let Some(replaced) = users.lru.put(user_id, fresh) {
            users.bytes -= replaced.bytes;
        }
        while users.bytes > self.budget {
            let Some((_, evicted)) = users.lru.pop_lru() else {
                break;
            };
            users.bytes -= evicted.bytes;
        }
    }

    /// The user's reading gate, shared by every search reading their chunks right now.
    fn gate(&self, user_id: Uuid) -> ReadingGate<'_> {
        let gate = self.reading_lock().entry(user_id).or_default().clone();
        ReadingGate {
            index: self,
            user_id,
            gate,
        }
    }

    fn reading_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>> {
        self.reading.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{
        ChunkSet, ChunkStore, DocumentStore, NewChunk, NewDocument, NewUser, UserStore,
    };

    /// A store with one user owning one ready document of `chunks` 4-dimensional chunks
    /// ("chunk 0", "chunk 1"...), and the scope of the user's searches.
    async fn store_with_chunks(
        dir: &std::path::Path,
        chunks: usize,
    ) -> (SqliteStore, SearchScope<'static>) {
        let texts: Vec<String> = (0..chunks).map(|n| format!("chunk {n}")).collect();
        store_with_texts(dir, &texts).await
    }

    /// A store with one user owning one ready document of a chunk per text.
    async fn store_with_texts(
        dir: &std::path::Path,
        texts: &[String],
    ) -> (SqliteStore, SearchScope<'static>) {
        let store = SqliteStore::open(&dir.join("ragd.db"), 8).await.unwrap();
        let user = store
            .create_user(NewUser::for_tests("ada@example.com"))
            .await
            .unwrap()
            .id;
        let document = Uuid::now_v7();
        store
            .create_document(NewDocument {
                id: document,
                user_id: user,
                filename: "a.txt".into(),
                content_type: "text/plain".into(),
                size_bytes: 1,
                sha256: document.simple().to_string(),
                metadata: serde_json::json!({}),
                storage_path: document.simple().to_string(),
            })
            .await
            .unwrap();
        let new_chunks: Vec<NewChunk> = (0..)
            .zip(texts)
            .map(|(n, text)| NewChunk {
                chunk_index: n,
                text: text.clone(),
                page: None,
                char_start: 0,
                char_end: 1,
                heading_path: None,
                token_count: 2,
                embedding: vec![1.0, n as f32, 0.5, -1.0],
            })
            .collect();
        let stored = store
            .replace_chunks(ChunkSet {
                user_id: user,
                document_id: document,
                model: "m",
                dimension: 4,
                chunks: &new_chunks,
            })
            .await
            .unwrap();
        assert!(stored);
        let scope = SearchScope {
            user_id: user,
            document_ids: &[],
            embedding_model: "m",
        };
        (store, scope)
    }

    #[tokio::test]
    async fn concurrent_first_searches_read_the_chunks_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, scope) = store_with_chunks(dir.path(), 50).await;
        let query = [1.0, 2.0, 0.5, -1.0];
        let searches = (0..8).map(|_| store.index.candidates(&store.pool, scope, &query, 5));
        for found in futures::future::join_all(searches).await {
            assert_eq!(found.unwrap().unwrap().len(), 5);
        }
        assert_eq!(
            store.index.reads.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert!(store.index.reading_lock().is_empty(), "no gate left behind");
    }

    #[tokio::test]
    async fn a_search_abandoned_while_waiting_to_read_leaves_no_gate_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (store, scope) = store_with_chunks(dir.path(), 5).await;
        let reader = store.index.gate(scope.user_id);
        let reading = reader.gate.lock().await;

        let waiting = store.index.current(&store.pool, scope.user_id, "m");
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(50), waiting).await;
        assert!(gave_up.is_err(), "it waited for the reader");
        drop(reading);
        drop(reader);

        assert!(store.index.reading_lock().is_empty(), "no gate left behind");
    }

    #[tokio::test]
    async fn keywords_rank_the_chunks_holding_them() {
        let dir = tempfile::tempdir().unwrap();
        let (store, scope) = store_with_chunks(dir.path(), 50).await;
        let ranked = store
            .index
            .keyword_ranking(&store.pool, scope, &["7".into(), "chunks".into()], 10)
            .await
            .unwrap()
            .unwrap();
        // Every chunk holds "chunk" (the stem of "chunks"), one holds "7".
        assert_eq!(ranked.len(), 10);
        assert!(ranked[0].1 > ranked[1].1, "{ranked:?}");
        let texts: Vec<String> = sqlx::query_scalar("SELECT text FROM chunks WHERE id = $1")
            .bind(ranked[0].0)
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(texts, ["chunk 7"]);
        let elsewhere = SearchScope {
            document_ids: &[Uuid::from_u128(1)],
            ..scope
        };
        let none = store
            .index
            .keyword_ranking(&store.pool, elsewhere, &["7".into()], 10)
            .await
            .unwrap();
        assert_eq!(none, Some(Vec::new()));
    }

    #[tokio::test]
    async fn keyword_scores_are_fts5s_bm25() {
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<String> = [
            "Debugging a struct: derive Debug and print it with {:?}.",
            "The debugger prints nothing; debugging by printing works.",
            "Structs group related values; a struct's fields are named.",
            "Traits define shared behaviour, with default implementations.",
            "Naïve café prints: Ünïcode words are folded before matching.",
            "",
        ]
        .into_iter()
        .cycle()
        .take(30)
        .enumerate()
        .map(|(n, text)| format!("{text} Chunk {n} of {}.", n % 7))
        .collect();
        let (store, scope) = store_with_texts(dir.path(), &texts).await;
        for words in [
            vec!["debugging", "debug", "print"],
            vec!["struct", "structs", "naive", "cafe"],
            vec!["chunk", "3"],
            vec!["absent"],
        ] {
            let words: Vec<String> = words.into_iter().map(str::to_owned).collect();
            let mine = store
                .index
                .keyword_ranking(&store.pool, scope, &words, 12)
                .await
                .unwrap()
                .unwrap();
            let fts5: Vec<(i64, f64)> = sqlx::query_as(
                "SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts \
                 WHERE chunks_fts MATCH $1 ORDER BY bm25(chunks_fts), rowid LIMIT 12",
            )
            .bind(crate::store::search::any_of(&words, "OR"))
            .fetch_all(&store.pool)
            .await
            .unwrap();
            assert_eq!(mine.len(), fts5.len(), "{words:?}");
            for ((id, score), (fts5_id, fts5_score)) in mine.iter().zip(&fts5) {
                assert_eq!(id, fts5_id, "{words:?}: {mine:?} {fts5:?}");
                assert!(
                    (score - fts5_score).abs() < 1e-9,
                    "{words:?}: {mine:?} {fts5:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn an_oversized_user_is_searched_by_sqlite_without_reading_their_chunks_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let (store, scope) = store_with_chunks(dir.path(), 50).await;
        let store = store.with_search_index_budget(100);
        for _ in 0..3 {
            let found = store
                .index
                .candidates(&store.pool, scope, &[1.0, 2.0, 0.5, -1.0], 5)
                .await
                .unwrap();
            assert!(found.is_none());
            let ranked = store
                .index
                .keyword_ranking(&store.pool, scope, &["chunk".into()], 5)
                .await
                .unwrap();
            assert!(ranked.is_none());
        }
        let reads = store.index.reads.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            reads, 1,
            "remembered as oversized until the generation moves"
        );
    }

    fn user(generation: i64, bytes: usize) -> Arc<UserIndex> {
        Arc::new(UserIndex {
            generation,
            model: "m".into(),
            dimension: 4,
            documents: Vec::new(),
            oversized: false,
            bytes,
        })
    }

    fn cached(index: &SearchIndex) -> Vec<(Uuid, i64)> {
        let users = index.lock();
        let mut ids: Vec<(Uuid, i64)> = users
            .lru
            .iter()
            .map(|(id, u)| (*id, u.generation))
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn the_least_recently_searched_users_leave_first_to_stay_within_the_budget() {
        let index = SearchIndex::new(100);
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        index.keep(a, user(1, 40));
        index.keep(b, user(1, 40));
        // A search of `a` makes `b` the least recently used.
        assert!(index.lock().lru.get(&a).is_some());
        index.keep(c, user(1, 40));
        assert_eq!(cached(&index), [(a, 1), (c, 1)]);
        assert_eq!(index.lock().bytes, 80);
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one() {
        let index = SearchIndex::new(100);
        let a = Uuid::from_u128(1);
        index.keep(a, user(5, 10));
        index.keep(a, user(4, 20));
        assert_eq!(cached(&index), [(a, 5)]);
        index.keep(a, user(6, 30));
        assert_eq!(cached(&index), [(a, 6)]);
        assert_eq!(index.lock().bytes, 30);
    }
}
