//! Search latency on the embedded backend: p50/p99 of each mode through the retrieval service
//! (question embedding by the local embedder included, HTTP excluded) over a synthetic corpus
//! of 384-dimensional chunks, all owned by one user (the worst case for a per-user scan).
//!
//! Run on demand: `cargo bench --bench retrieval` (optionally `-- 10000 50000` for the corpus
//! sizes); figures go into docs/benchmarks.md.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ragd::config::Settings;
use ragd::services::embeddings::{Embedder, LocalEmbedder};
use ragd::services::retrieval::{Retriever, SearchMode, SearchQuery};
use ragd::store::{ChunkSet, NewChunk, NewDocument, NewUser, Store};
use uuid::Uuid;

const DIMENSION: usize = 384;
const CHUNKS_PER_DOCUMENT: usize = 1000;
const QUERIES: usize = 200;
const WORDS_PER_CHUNK: usize = 60;

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

async fn corpus(store: &Arc<dyn Store>, embedder: &LocalEmbedder, chunks: usize) -> Uuid {
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
    user.id
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1e3
}

async fn run(chunks: usize) {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("temp dir: {err}"));
    let values: HashMap<String, String> = [
        ("DATA_DIR", dir.path().display().to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/ragd.db", dir.path().display()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Settings::from_map(&values).unwrap_or_else(|err| panic!("settings: {err}"));
    let store = ragd::store::connect(&settings)
        .await
        .unwrap_or_else(|err| panic!("store: {err}"));
    let local = LocalEmbedder::new(DIMENSION).unwrap_or_else(|err| panic!("embedder: {err}"));
    let loading = Instant::now();
    let user = corpus(&store, &local, chunks).await;
    let loaded = loading.elapsed();
    let embedder: Arc<dyn Embedder> = Arc::new(local);
    let retriever = Retriever::new(store.clone(), embedder);
    let words = vocabulary();
    let mut rng = Rng(42);
    let questions: Vec<String> = (0..QUERIES).map(|_| text(&mut rng, &words, 8)).collect();
    println!(
        "{chunks} chunks ({DIMENSION}-d), loaded in {:.1} s:",
        loaded.as_secs_f64()
    );
    for mode in [SearchMode::Vector, SearchMode::Keyword, SearchMode::Hybrid] {
        let mut times = Vec::with_capacity(QUERIES);
        for question in &questions {
            let started = Instant::now();
            let results = retriever
                .search(SearchQuery {
                    user_id: user,
                    text: question,
                    document_ids: &[],
                    top_k: 10,
                    mode,
                })
                .await
                .unwrap_or_else(|err| panic!("search: {err}"));
            times.push(started.elapsed());
            assert!(!results.is_empty(), "every question matches something");
        }
        times.sort();
        println!(
            "  {:<8} p50 {:6.2} ms  p99 {:6.2} ms  ({QUERIES} queries, top_k 10)",
            mode.as_str(),
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
    store.close().await;
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
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|err| panic!("runtime: {err}"));
    for chunks in sizes {
        runtime.block_on(run(chunks));
    }
}
