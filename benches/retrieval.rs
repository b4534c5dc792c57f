//! Search latency and recall on the embedded backend (or PostgreSQL): p50/p99 of each mode through the
//! retrieval service (question embedding by the local embedder included, HTTP excluded) over a
//! synthetic corpus of 384-dimensional chunks, all owned by one user (the worst case for a
//! per-user index); recall@10 of each mode against exact search (brute-force cosine over every
//! vector, BM25 over every match, and their fusion); the search index's load time and memory.
//!
//! Run on demand: `cargo bench --bench retrieval` (optionally `-- 10000 100000` for the corpus
//! sizes; `SEARCH_INDEX_MEMORY_MB=1024` lets 1M chunks be searched in memory); figures go into
//! docs/benchmarks.md. With `BENCH_DATABASE_URL=postgres://...` the
//! same runs go to PostgreSQL + pgvector instead, each in a database of its own made on that
//! server and dropped afterwards; the HNSW index is built after loading, and its build time and
//! size are reported. The keyword reference there is the store's own ranking (`ts_rank` over
//! every match, so exact by construction); the vector reference is brute force in both cases.
//! `BENCH_QUERIES` sets the questions per set (200), `BENCH_PG_MAINTENANCE_WORK_MEM` the
//! scratch database's `maintenance_work_mem` for the HNSW build (the server's default).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ragd::config::Settings;
use ragd::services::embeddings::{Embedder, LocalEmbedder};
use ragd::services::retrieval::{
    Retriever, SearchMode, SearchQuery, reciprocal_rank_fusion, vector_weight,
};
use ragd::store::search::{SearchScope, query_terms};
use ragd::store::{ChunkSet, NewChunk, NewDocument, NewUser, SearchHit, Store};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

const DIMENSION: usize = 384;
const CHUNKS_PER_DOCUMENT: usize = 1000;
/// Questions per set, unless `BENCH_QUERIES` says otherwise (the exact references of 1M chunks
/// on PostgreSQL take seconds per question).
const QUERIES: usize = 200;
const WORDS_PER_CHUNK: usize = 60;
const TOP_K: usize = 10;
/// What the retriever asks each ranking for in hybrid mode at `top_k` 10 (4 per result).
const HYBRID_CANDIDATES: usize = 40;

/// A fixed vocabulary; word frequencies follow a rough Zipf curve, as in real text.
fn vocabulary() -> Vec<String> {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ren", "tas", "vo", "pel", "dur", "sin", "ga", "mor", "tel", "qua",
        "bri", "zen", "fo",
    ];
    let mut words = Vec::new();
    for a in SYLLABLES {
        for b in SYLLABLES {
            for c in ["", "n", "ter", "ship"] {
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// An index in 0..n, skewed towards small values.
    fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

fn text(rng: &mut Rng, words: &[String], count: usize) -> String {
    (0..count)
        .map(|_| words[rng.zipf(words.len())].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A chunk as the exact references know it: where it is, and its vector.
type Key = (Uuid, i32);

/// Stores `chunks` chunks for one new user; returns the user and every chunk's vector.
async fn corpus(
    store: &Arc<dyn Store>,
    embedder: &LocalEmbedder,
    chunks: usize,
) -> (Uuid, Vec<(Key, Vec<f32>)>) {
    let user = store
        .create_user(NewUser {
            email: "bench@example.com".into(),
            password_hash: "-".into(),
            role: "user".into(),
        })
        .await
        .unwrap_or_else(|err| panic!("user: {err}"));
    let words = vocabulary();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut vectors = Vec::with_capacity(chunks);
    for document in 0..chunks.div_ceil(CHUNKS_PER_DOCUMENT) {
        let id = Uuid::now_v7();
        store
            .create_document(NewDocument {
                id,
                user_id: user.id,
                filename: format!("doc-{document}.txt"),
                content_type: "text/plain".into(),
                size_bytes: 1,
                sha256: id.simple().to_string(),
                metadata: serde_json::json!({}),
                storage_path: id.simple().to_string(),
            })
            .await
            .unwrap_or_else(|err| panic!("document: {err}"));
        let count = CHUNKS_PER_DOCUMENT.min(chunks - document * CHUNKS_PER_DOCUMENT);
        let new_chunks: Vec<NewChunk> = (0..count)
            .map(|index| {
                let text = text(&mut rng, &words, WORDS_PER_CHUNK);
                NewChunk {
                    chunk_index: index as i32,
                    embedding: embedder.embed_text(&text),
                    char_start: 0,
                    char_end: text.chars().count() as i32,
                    text,
                    page: None,
                    heading_path: None,
                    token_count: WORDS_PER_CHUNK as i32,
                }
            })
            .collect();
        vectors.extend(
            new_chunks
                .iter()
                .map(|c| ((id, c.chunk_index), c.embedding.clone())),
        );
        store
            .replace_chunks(ChunkSet {
                user_id: user.id,
                document_id: id,
                model: embedder.model(),
                dimension: DIMENSION,
                chunks: &new_chunks,
            })
            .await
            .unwrap_or_else(|err| panic!("chunks: {err}"));
    }
    (user.id, vectors)
}

/// The exact vector ranking: cosine similarity with every stored vector, best first (ties by
/// document and chunk, as the store orders them).
fn exact_vector(vectors: &[(Key, Vec<f32>)], query: &[f32], limit: usize) -> Vec<Key> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let query_norm = norm(query);
    let mut scored: Vec<(f32, Key)> = vectors
        .iter()
        .map(|(key, v)| {
            let dot: f32 = v.iter().zip(query).map(|(a, b)| a * b).sum();
            (dot / (norm(v) * query_norm), *key)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(limit);
    scored.into_iter().map(|(_, key)| key).collect()
}

/// The exact keyword ranking: BM25 over every chunk matching any term (no term dropped, no
/// candidate bound), as FTS5 computes it.
async fn exact_keyword(pool: &SqlitePool, user: Uuid, question: &str, limit: usize) -> Vec<Key> {
    let terms = query_terms(question);
    if terms.is_empty() {
        return Vec::new();
    }
    let any = terms
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(" OR ");
    sqlx::query_as(
        "SELECT c.document_id, c.chunk_index FROM chunks_fts \
         CROSS JOIN chunks AS c ON c.id = chunks_fts.rowid WHERE chunks_fts MATCH $1 \
         AND c.user_id = $2 ORDER BY bm25(chunks_fts), c.document_id, c.chunk_index LIMIT $3",
    )
    .bind(any)
    .bind(user)
    .bind(limit as i64)
    .fetch_all(pool)
    .await
    .unwrap_or_else(|err| panic!("exact keyword: {err}"))
}

/// Where the exact keyword ranking comes from.
enum KeywordReference {
    /// SQLite: BM25 over every match, straight from FTS5 (the store bounds its candidates).
    Sqlite(SqlitePool),
    /// PostgreSQL: the store itself, which ranks every match with `ts_rank`; the chunks'
    /// embedding model.
    Store(Arc<dyn Store>, String),
}

impl KeywordReference {
    async fn top(&self, user: Uuid, question: &str, limit: usize) -> Vec<Key> {
        match self {
            Self::Sqlite(pool) => exact_keyword(pool, user, question, limit).await,
            Self::Store(store, model) => {
                let scope = SearchScope {
                    user_id: user,
                    document_ids: &[],
                    embedding_model: model,
                };
                store
                    .keyword_search(scope, &query_terms(question), limit as u32)
                    .await
                    .unwrap_or_else(|err| panic!("keyword reference: {err}"))
                    .into_iter()
                    .map(|hit| (hit.document_id, hit.chunk_index))
                    .collect()
            }
        }
    }
}

/// Hits carrying only their key, for the fusion the retriever does.
fn hits(keys: &[Key]) -> Vec<SearchHit> {
    keys.iter()
        .map(|&(document_id, chunk_index)| SearchHit {
            document_id,
            filename: String::new(),
            chunk_index,
            text: String::new(),
            page: None,
            char_start: 0,
            char_end: 0,
            score: 0.0,
        })
        .collect()
}

/// The exact top 10 of each mode for `question`.
async fn exact(
    reference: &KeywordReference,
    user: Uuid,
    vectors: &[(Key, Vec<f32>)],
    embedder: &LocalEmbedder,
    question: &str,
) -> HashMap<&'static str, Vec<Key>> {
    let vector = exact_vector(vectors, &embedder.embed_text(question), HYBRID_CANDIDATES);
    let keyword = reference.top(user, question, HYBRID_CANDIDATES).await;
    let weight = vector_weight(embedder.model());
    let fused: Vec<Key> =
        reciprocal_rank_fusion(vec![(hits(&vector), weight), (hits(&keyword), 1.0)], TOP_K)
            .into_iter()
            .map(|hit| (hit.document_id, hit.chunk_index))
            .collect();
    let top = |keys: &[Key]| keys.iter().take(TOP_K).copied().collect::<Vec<_>>();
    HashMap::from([
        ("vector", top(&vector)),
        ("keyword", top(&keyword)),
        ("hybrid", fused),
    ])
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1e3
}

/// This process's resident memory in MiB.
fn resident_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// A PostgreSQL database made for one run on the server of `admin_url`, dropped afterwards.
struct ScratchDatabase {
    admin: PgPool,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(admin_url: &str, chunks: usize) -> Self {
        let admin = PgPool::connect(admin_url)
            .await
            .unwrap_or_else(|err| panic!("postgres: {err}"));
        let name = format!("ragd_bench_{chunks}_{}", std::process::id());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap_or_else(|err| panic!("create database: {err}"));
        // pgvector builds HNSW far faster when the graph fits this (1M chunks: about 2 GB).
        if let Ok(memory) = std::env::var("BENCH_PG_MAINTENANCE_WORK_MEM") {
            let memory = memory.replace('\'', "");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ALTER DATABASE {name} SET maintenance_work_mem = '{memory}'"
            )))
            .execute(&admin)
            .await
            .unwrap_or_else(|err| panic!("maintenance_work_mem: {err}"));
        }
        let mut url =
            reqwest::Url::parse(admin_url).unwrap_or_else(|err| panic!("postgres url: {err}"));
        url.set_path(&name);
        Self {
            admin,
            name,
            url: url.to_string(),
        }
    }

    async fn drop(self) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await
        .unwrap_or_else(|err| panic!("drop database: {err}"));
    }
}

/// One corpus size on SQLite, or on PostgreSQL + pgvector when `postgres` (a server URL) is
/// given.
async fn run(chunks: usize, postgres: Option<&str>) {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("temp dir: {err}"));
    let database = dir.path().join("ragd.db");
    let scratch = match postgres {
        Some(url) => Some(ScratchDatabase::create(url, chunks).await),
        None => None,
    };
    let database_url = scratch.as_ref().map_or_else(
        || format!("sqlite://{}", database.display()),
        |scratch| scratch.url.clone(),
    );
    let mut values: HashMap<String, String> = [
        ("DATA_DIR", dir.path().display().to_string()),
        ("DATABASE_URL", database_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // 1M chunks need more than the default budget to be searched in memory.
    if let Ok(budget) = std::env::var("SEARCH_INDEX_MEMORY_MB") {
        values.insert("SEARCH_INDEX_MEMORY_MB".to_owned(), budget);
    }
    let settings = Settings::from_map(&values).unwrap_or_else(|err| panic!("settings: {err}"));
    let store = ragd::store::connect(&settings)
        .await
        .unwrap_or_else(|err| panic!("store: {err}"));
    let local = LocalEmbedder::new(DIMENSION).unwrap_or_else(|err| panic!("embedder: {err}"));
    let storing = Instant::now();
    let (user, vectors) = corpus(&store, &local, chunks).await;
    let stored = storing.elapsed();
    let words = vocabulary();
    let mut rng = Rng(42);
    let queries = std::env::var("BENCH_QUERIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(QUERIES);
    let sets = [
        (
            "Zipf questions (8 words, mostly common)",
            (0..queries)
                .map(|_| text(&mut rng, &words, 8))
                .collect::<Vec<_>>(),
        ),
        (
            "rare-word questions (4 of the 512 least frequent words)",
            (0..queries)
                .map(|_| rare_words(&mut rng, &words, 4))
                .collect(),
        ),
    ];

    // The exact references: on SQLite from a separate connection to the same file.
    let reference = if scratch.is_some() {
        KeywordReference::Store(store.clone(), local.model().to_owned())
    } else {
        KeywordReference::Sqlite(
            SqlitePool::connect(&format!("sqlite://{}", database.display()))
                .await
                .unwrap_or_else(|err| panic!("reference pool: {err}")),
        )
    };
    let mut expected = Vec::new();
    for (_, questions) in &sets {
        let mut exact_set = Vec::with_capacity(queries);
        for question in questions {
            exact_set.push(exact(&reference, user, &vectors, &local, question).await);
        }
        expected.push(exact_set);
    }
    if let KeywordReference::Sqlite(pool) = reference {
        pool.close().await;
    }

    let embedder: Arc<dyn Embedder> = Arc::new(local);
    let retriever = Retriever::new(store.clone(), embedder);
    println!(
        "{chunks} chunks ({DIMENSION}-d) on {}, stored in {:.1} s (embedding included):",
        store.backend(),
        stored.as_secs_f64()
    );
    if let Some(scratch) = &scratch {
        report_hnsw_build(&store, scratch).await;
    }
    let before = resident_mib();
    let loading = Instant::now();
    search(&retriever, user, &sets[0].1[0], SearchMode::Vector).await;
    println!(
        "  index load (first search): {:.0} ms, resident memory +{:.0} MiB",
        loading.elapsed().as_secs_f64() * 1e3,
        resident_mib() - before
    );
    // Kept until now so that the index's memory is new memory, not freed reference vectors.
    drop(vectors);
    for ((label, questions), expected) in sets.iter().zip(&expected) {
        println!("  {label}:");
        for mode in [SearchMode::Vector, SearchMode::Keyword, SearchMode::Hybrid] {
            measure(&retriever, user, questions, expected, mode).await;
        }
    }
    store.close().await;
    if let Some(scratch) = scratch {
        scratch.drop().await;
    }
}

/// Builds pgvector's HNSW index over the stored chunks (as ragd does at start-up) and reports
/// its build time and size.
async fn report_hnsw_build(store: &Arc<dyn Store>, scratch: &ScratchDatabase) {
    let building = Instant::now();
    store
        .prepare_vector_index(DIMENSION)
        .await
        .unwrap_or_else(|err| panic!("HNSW index: {err}"));
    let built = building.elapsed();
    let pool = PgPool::connect(&scratch.url)
        .await
        .unwrap_or_else(|err| panic!("postgres: {err}"));
    let (bytes,): (i64,) = sqlx::query_as(
        "SELECT COALESCE(sum(pg_relation_size(indexrelid)), 0)::int8 FROM pg_index \
         WHERE indrelid = 'chunks'::regclass AND pg_get_indexdef(indexrelid) LIKE '%hnsw%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap_or_else(|err| panic!("index size: {err}"));
    pool.close().await;
    println!(
        "  HNSW index (halfvec, cosine) built in {:.1} s, {:.0} MiB on disk",
        built.as_secs_f64(),
        bytes as f64 / (1024.0 * 1024.0)
    );
}

/// `count` words drawn evenly from the less frequent half of the vocabulary.
fn rare_words(rng: &mut Rng, words: &[String], count: usize) -> String {
    let rare = &words[words.len() / 2..];
    (0..count)
        .map(|_| rare[(rng.next() % rare.len() as u64) as usize].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn search(
    retriever: &Retriever,
    user: Uuid,
    question: &str,
    mode: SearchMode,
) -> Vec<ragd::services::retrieval::Citation> {
    retriever
        .search(SearchQuery {
            user_id: user,
            text: question,
            document_ids: &[],
            top_k: TOP_K as u32,
            mode,
        })
        .await
        .unwrap_or_else(|err| panic!("search: {err}"))
}

/// Prints the latency percentiles and recall@10 of `mode` over `questions`.
async fn measure(
    retriever: &Retriever,
    user: Uuid,
    questions: &[String],
    expected: &[HashMap<&'static str, Vec<Key>>],
    mode: SearchMode,
) {
    let mut times = Vec::with_capacity(questions.len());
    let mut recalled = 0;
    let mut relevant = 0;
    for (question, expected) in questions.iter().zip(expected) {
        let started = Instant::now();
        let results = search(retriever, user, question, mode).await;
        times.push(started.elapsed());
        let found: HashSet<Key> = results
            .iter()
            .map(|c| (c.document_id, c.chunk_index as i32))
            .collect();
        let exact = &expected[mode.as_str()];
        relevant += exact.len();
        recalled += exact.iter().filter(|key| found.contains(key)).count();
    }
    times.sort();
    println!(
        "    {:<8} p50 {:6.2} ms  p99 {:6.2} ms  recall@10 {:.3}  ({} queries)",
        mode.as_str(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        recalled as f64 / relevant.max(1) as f64,
        questions.len()
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|arg| arg.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000]
    } else {
        sizes
    };
    let postgres = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|url| url.starts_with("postgres"));
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|err| panic!("runtime: {err}"));
    for chunks in sizes {
        runtime.block_on(run(chunks, postgres.as_deref()));
    }
}
