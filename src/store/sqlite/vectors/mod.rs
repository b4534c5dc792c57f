//! The embedded backend's in-process vector index: each user's chunk vectors, quantized to
//! 8 bits and held in memory, scanned whole on every search (no graph, no clustering, so no
//! recall lost to the index structure; the candidates it returns are re-ranked exactly).
//!
//! A user's vectors are read from SQLite on their first search and kept in an LRU bounded by a
//! byte budget (`SEARCH_INDEX_MEMORY_MB`). Before each use, one indexed read of the user's
//! search generation (kept by triggers, so writes by any process count) says whether the copy
//! is current; when it is not, only the documents whose chunk set changed are read again. A
//! user whose vectors would not fit the budget is searched by the exact scan in SQLite.
//! Concurrent searches that find a user's copy missing or stale wait for one read rather than
//! each reading the same vectors (up to a second and tens of MB at 100k chunks).

mod load;
mod quantized;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::store::{SearchScope, StoreError};
use quantized::{DocumentVectors, Query, nearest, row_bytes};

/// One user's searchable vectors as of `generation`.
#[derive(Debug)]
struct UserVectors {
    generation: i64,
    model: String,
    dimension: usize,
    /// Shared with the copy this one refreshed: unchanged documents are not copied.
    documents: Vec<Arc<DocumentVectors>>,
    bytes: usize,
}

impl UserVectors {
    fn is_current(&self, generation: i64, model: &str, dimension: usize) -> bool {
        self.generation == generation && self.model == model && self.dimension == dimension
    }
}

/// The cached users, least recently searched first out.
struct Users {
    lru: LruCache<Uuid, Arc<UserVectors>>,
    bytes: usize,
}

/// Per-user vector indexes of one SQLite store, within a memory budget.
pub struct VectorIndex {
    budget: usize,
    users: Mutex<Users>,
    /// One gate per user whose vectors are being read; removed by the last one through it.
    reading: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Reads of a user's vectors from SQLite, for tests.
    #[cfg(test)]
    reads: std::sync::atomic::AtomicUsize,
}

impl VectorIndex {
    /// An empty index that keeps at most `budget` bytes of vectors.
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
    /// quantized scan, best first; `None` when the user's vectors exceed the budget (the
    /// caller then scans exactly in SQLite).
    pub async fn candidates(
        &self,
        pool: &SqlitePool,
        scope: SearchScope<'_>,
        query: &[f32],
        count: usize,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let Some(user) = self
            .current(pool, scope.user_id, scope.embedding_model, query.len())
            .await?
        else {
            return Ok(None);
        };
        let query = Query::new(query);
        let only: Vec<Uuid> = scope.document_ids.to_vec();
        // Milliseconds of CPU at 100k chunks: off the async workers.
        let scan = tokio::task::spawn_blocking(move || {
            let documents: Vec<&DocumentVectors> = user
                .documents
                .iter()
                .map(AsRef::as_ref)
                .filter(|d| only.is_empty() || only.contains(&d.document_id))
                .collect();
            nearest(&documents, &query, count)
        });
        match scan.await {
            Ok(ids) => Ok(Some(ids)),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
        }
    }

    /// The user's vectors as of now: the cached copy when its generation is current, else a
    /// refreshed one (cached in turn); `None` when they exceed the budget.
    async fn current(
        &self,
        pool: &SqlitePool,
        user_id: Uuid,
        model: &str,
        dimension: usize,
    ) -> Result<Option<Arc<UserVectors>>, StoreError> {
        if let Some(current) = self.cached_current(pool, user_id, model, dimension).await? {
            return Ok(Some(current));
        }
        let gate = self.gate(user_id);
        let result = async {
            let _reading = gate.lock().await;
            // Whoever held the gate before may have just read what this search needs.
            if let Some(current) = self.cached_current(pool, user_id, model, dimension).await? {
                return Ok(Some(current));
            }
            self.read_and_keep(pool, user_id, model, dimension).await
        }
        .await;
        self.release_gate(user_id, gate);
        result
    }

    /// The cached copy, if there is one and its generation is current.
    async fn cached_current(
        &self,
        pool: &SqlitePool,
        user_id: Uuid,
        model: &str,
        dimension: usize,
    ) -> Result<Option<Arc<UserVectors>>, StoreError> {
        let Some(cached) = self.lock().lru.get(&user_id).cloned() else {
            return Ok(None);
        };
        let generation = load::generation(&mut *pool.acquire().await?, user_id).await?;
        Ok(cached
            .is_current(generation, model, dimension)
            .then_some(cached))
    }

    /// Reads the user's vectors (refreshing the cached copy when there is one) and caches them.
    async fn read_and_keep(
        &self,
        pool: &SqlitePool,
        user_id: Uuid,
        model: &str,
        dimension: usize,
    ) -> Result<Option<Arc<UserVectors>>, StoreError> {
        #[cfg(test)]
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cached = self.lock().lru.peek(&user_id).cloned();
        let Some(fresh) = self
            .refresh(pool, user_id, model, dimension, cached.as_deref())
            .await?
        else {
            self.forget(user_id);
            return Ok(None);
        };
        let fresh = Arc::new(fresh);
        self.keep(user_id, fresh.clone());
        Ok(Some(fresh))
    }

    /// Reads the user's vectors, reusing `previous`'s documents whose version is unchanged;
    /// `None` (reading no vector) when they would exceed the budget.
    async fn refresh(
        &self,
        pool: &SqlitePool,
        user_id: Uuid,
        model: &str,
        dimension: usize,
        previous: Option<&UserVectors>,
    ) -> Result<Option<UserVectors>, StoreError> {
        // One read transaction: the generation and the rows come from the same snapshot, so
        // a write committed meanwhile makes the next search refresh again.
        let mut tx = pool.begin().await?;
        let generation = load::generation(&mut tx, user_id).await?;
        let versions = load::versions(&mut tx, user_id, model).await?;
        let rows = versions
            .iter()
            .map(|v| usize::try_from(v.chunks).unwrap_or(usize::MAX))
            .fold(0, usize::saturating_add);
        if row_bytes(rows, dimension) > self.budget {
            return Ok(None);
        }
        let reusable: HashMap<(Uuid, i64), &Arc<DocumentVectors>> = previous
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
        let read = load::vectors(&mut tx, user_id, model, &changed, dimension).await?;
        tx.commit().await?;
        documents.extend(read.into_iter().map(Arc::new));
        Ok(Some(UserVectors {
            generation,
            model: model.to_owned(),
            dimension,
            bytes: documents.iter().map(|d| d.bytes()).sum(),
            documents,
        }))
    }

    /// Caches `fresh` as the user's copy, unless a newer one got there first, then evicts the
    /// least recently searched users until the cache fits its budget.
    fn keep(&self, user_id: Uuid, fresh: Arc<UserVectors>) {
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

    /// The user's reading gate, shared by every search reading their vectors right now.
    fn gate(&self, user_id: Uuid) -> Arc<tokio::sync::Mutex<()>> {
        self.reading_lock().entry(user_id).or_default().clone()
    }

    /// Drops `gate`, and its map entry when no other search holds it.
    fn release_gate(&self, user_id: Uuid, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut reading = self.reading_lock();
        // The map's reference and this one: nobody else is waiting.
        if Arc::strong_count(&gate) == 2 {
            reading.remove(&user_id);
        }
    }

    fn reading_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>> {
        self.reading.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn forget(&self, user_id: Uuid) {
        let mut users = self.lock();
        if let Some(forgotten) = users.lru.pop(&user_id) {
            users.bytes -= forgotten.bytes;
        }
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

    /// A store with one user owning one ready document of `chunks` 4-dimensional chunks.
    async fn store_with_chunks(dir: &std::path::Path, chunks: usize) -> (SqliteStore, Uuid) {
        let store = SqliteStore::open(&dir.join("ragd.db"), 8).await.unwrap();
        let user = store
            .create_user(NewUser {
                email: "ada@example.com".into(),
                password_hash: "x".into(),
                role: "user".into(),
            })
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
        let new_chunks: Vec<NewChunk> = (0..chunks)
            .map(|n| NewChunk {
                chunk_index: i32::try_from(n).unwrap(),
                text: format!("chunk {n}"),
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
        (store, user)
    }

    #[tokio::test]
    async fn concurrent_first_searches_read_the_vectors_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, user) = store_with_chunks(dir.path(), 50).await;
        let scope = SearchScope {
            user_id: user,
            document_ids: &[],
            embedding_model: "m",
        };
        let query = [1.0, 2.0, 0.5, -1.0];
        let searches = (0..8).map(|_| store.vectors.candidates(&store.pool, scope, &query, 5));
        for found in futures::future::join_all(searches).await {
            assert_eq!(found.unwrap().unwrap().len(), 5);
        }
        assert_eq!(
            store
                .vectors
                .reads
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert!(
            store.vectors.reading_lock().is_empty(),
            "no gate left behind"
        );
    }

    fn user(generation: i64, bytes: usize) -> Arc<UserVectors> {
        Arc::new(UserVectors {
            generation,
            model: "m".into(),
            dimension: 4,
            documents: Vec::new(),
            bytes,
        })
    }

    fn cached(index: &VectorIndex) -> Vec<(Uuid, i64)> {
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
        let index = VectorIndex::new(100);
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        index.keep(a, user(1, 40));
        index.keep(b, user(1, 40));
        // A search of `a` makes `b` the least recently used.
        assert!(index.lock().lru.get(&a).is_some());
        index.keep(c, user(1, 40));
        assert_eq!(cached(&index), [(a, 1), (c, 1)]);
        assert_eq!(index.lock().bytes, 80);
        index.forget(a);
        assert_eq!(cached(&index), [(c, 1)]);
        assert_eq!(index.lock().bytes, 40);
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one() {
        let index = VectorIndex::new(100);
        let a = Uuid::from_u128(1);
        index.keep(a, user(5, 10));
        index.keep(a, user(4, 20));
        assert_eq!(cached(&index), [(a, 5)]);
        index.keep(a, user(6, 30));
        assert_eq!(cached(&index), [(a, 6)]);
        assert_eq!(index.lock().bytes, 30);
    }
}
