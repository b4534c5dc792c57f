//! POST /api/v1/search on both backends: each mode finds the right chunk, filters are applied
//! inside the search (owner, document ids, ready documents), hostile queries, validation and
//! a failing embedding provider.
//!
//! Documents are seeded through the store with vectors from the app's own embedder and no
//! ingestion workers, so each test controls exactly what is stored.

use std::collections::HashSet;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use ragd::services::embeddings::local::MODEL as LOCAL_EMBEDDING_MODEL;
use ragd::services::retrieval::vector_weight;
use ragd::store::{ChunkSet, NewChunk, NewDocument, Store};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::embedding_mock::EmbeddingMock;
use crate::helpers::{Backend, TestApp, assert_error, signed_up, spawn_app_with};

/// A small corpus with one known answer per question.
pub const CORPUS: &[(&str, &str)] = &[
    (
        "lighthouse.txt",
        "The lighthouse keeper counted seventeen herons at dawn on the northern cape.",
    ),
    (
        "bread.txt",
        "Sourdough bread needs a starter culture of wild yeast, fed daily with flour and water.",
    ),
    (
        "rust.txt",
        "The borrow checker enforces that references never outlive the data they point to.",
    ),
    (
        "volcano.txt",
        "Basaltic lava from shield volcanoes spreads wide because the magma is runny.",
    ),
    (
        "chess.txt",
        "Castling moves the king two squares toward a rook, which jumps over to the other side.",
    ),
];

/// (question, the file that answers it).
const QUESTIONS: &[(&str, &str)] = &[
    (
        "how many herons did the lighthouse keeper count",
        "lighthouse.txt",
    ),
    ("what does a sourdough starter need", "bread.txt"),
    (
        "do references outlive their data under the borrow checker",
        "rust.txt",
    ),
    ("why does lava from shield volcanoes spread", "volcano.txt"),
    ("how does castling move the king and rook", "chess.txt"),
];

/// A user of the app: their bearer token and id.
pub struct Caller {
    pub token: String,
    pub id: Uuid,
}

pub async fn caller(app: &TestApp, email: &str) -> Caller {
    let token = signed_up(app, email).await;
    let id = app.user_id(&token).await;
    Caller { token, id }
}

/// Stores a ready document of `chunks` for `user`, embedded by the app's embedder.
pub async fn seed(app: &TestApp, user: Uuid, filename: &str, chunks: &[&str]) -> Uuid {
    seed_through(&*app.store(), app, user, filename, chunks).await
}

/// [`seed`] through `store`, which may be another handle on the app's database (as another
/// process would write it).
pub async fn seed_through(
    store: &dyn Store,
    app: &TestApp,
    user: Uuid,
    filename: &str,
    chunks: &[&str],
) -> Uuid {
    let id = Uuid::now_v7();
    store
        .create_document(NewDocument {
            id,
            user_id: user,
            filename: filename.into(),
            content_type: "text/plain".into(),
            size_bytes: 1,
            sha256: id.simple().to_string(),
            metadata: json!({}),
            storage_path: id.simple().to_string(),
        })
        .await
        .unwrap();
    let texts: Vec<String> = chunks.iter().map(|c| (*c).to_owned()).collect();
    let embedder = &app.state.embedder;
    let vectors = embedder.embed(&texts).await.unwrap();
    let mut offset = 0;
    let new_chunks: Vec<NewChunk> = texts
        .into_iter()
        .zip(vectors)
        .enumerate()
        .map(|(index, (text, embedding))| {
            let length = i32::try_from(text.chars().count()).unwrap();
            let chunk = NewChunk {
                chunk_index: i32::try_from(index).unwrap(),
                text,
                page: Some(1),
                char_start: offset,
                char_end: offset + length,
                heading_path: None,
                token_count: 16,
                embedding,
            };
            offset += length + 1;
            chunk
        })
        .collect();
    let stored = store
        .replace_chunks(ChunkSet {
            user_id: user,
            document_id: id,
            model: embedder.model(),
            dimension: embedder.dimension(),
            chunks: &new_chunks,
        })
        .await
        .unwrap();
    assert!(stored);
    id
}

/// Seeds the corpus for `user`: filename -> document id.
pub async fn seed_corpus(app: &TestApp, user: Uuid) -> Vec<(&'static str, Uuid)> {
    let mut ids = Vec::new();
    for (filename, text) in CORPUS {
        ids.push((*filename, seed(app, user, filename, &[text]).await));
    }
    ids
}

async fn search_raw(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/search"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A successful search's results.
pub async fn search(app: &TestApp, token: &str, body: Value) -> Vec<Value> {
    let response = search_raw(app, token, body.clone()).await;
    assert_eq!(response.status(), StatusCode::OK, "search {body}");
    let answer: Value = response.json().await.unwrap();
    let expected_mode = body.get("mode").cloned().unwrap_or(json!("hybrid"));
    assert_eq!(answer["mode"], expected_mode);
    answer["results"].as_array().unwrap().clone()
}

pub fn filenames(results: &[Value]) -> Vec<&str> {
    results
        .iter()
        .map(|r| r["filename"].as_str().unwrap())
        .collect()
}

/// An app with no ingestion workers, on `backend`, with `extra` settings.
pub async fn search_app(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
    let mut overrides = vec![("INGEST_WORKERS", "0")];
    overrides.extend_from_slice(extra);
    spawn_app_with(backend, &overrides).await
}

/// A worker-less app with default settings on `backend`.
pub async fn search_app_on(backend: Backend) -> Option<TestApp> {
    search_app(backend, &[]).await
}

crate::on_both_backends!(
    app = search_app_on;
    each_mode_finds_the_answer_and_hybrid_is_at_least_as_good,
    results_are_citations_with_locations,
    keyword_search_matches_any_term_and_word_forms,
    hybrid_fuses_both_rankings,
    document_ids_restrict_the_search,
    only_ready_documents_are_searched,
    deleted_documents_disappear_from_every_mode,
    top_k_is_filled_from_the_callers_chunks_among_many,
    keyword_search_finds_the_callers_chunks_below_other_users_best,
    another_users_chunks_are_never_returned,
    hostile_queries_never_fail,
    invalid_requests_are_422_with_field_paths,
    search_requires_authentication,
);

async fn each_mode_finds_the_answer_and_hybrid_is_at_least_as_good(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    seed_corpus(&app, ada.id).await;
    let mut hits = std::collections::HashMap::new();
    for mode in ["vector", "keyword", "hybrid"] {
        let mut found = 0;
        for (question, answer) in QUESTIONS {
            let results = search(
                &app,
                &ada.token,
                json!({"query": question, "mode": mode, "top_k": 3}),
            )
            .await;
            assert!(!results.is_empty(), "{mode}: {question}");
            if results[0]["filename"] == *answer {
                found += 1;
            }
        }
        hits.insert(mode, found);
    }
    assert_eq!(hits["vector"], QUESTIONS.len(), "{hits:?}");
    assert_eq!(hits["keyword"], QUESTIONS.len(), "{hits:?}");
    assert!(
        hits["hybrid"] >= hits["vector"].max(hits["keyword"]),
        "{hits:?}"
    );
}

async fn results_are_citations_with_locations(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let id = seed(
        &app,
        ada.id,
        "guide.md",
        &[
            "An introduction to gardening.",
            "Tomatoes need full sun and deep watering.",
        ],
    )
    .await;
    let results = search(
        &app,
        &ada.token,
        json!({"query": "tomatoes sun", "mode": "keyword", "top_k": 1}),
    )
    .await;
    assert_eq!(results.len(), 1);
    let citation = &results[0];
    assert_eq!(citation["document_id"], id.to_string());
    assert_eq!(citation["filename"], "guide.md");
    assert_eq!(citation["chunk_index"], 1);
    assert_eq!(
        citation["text"],
        "Tomatoes need full sun and deep watering."
    );
    assert_eq!(citation["page"], 1);
    assert_eq!(citation["char_start"], 30);
    assert_eq!(citation["char_end"], 71);
    assert!(citation["score"].as_f64().unwrap() > 0.0);
}

async fn keyword_search_matches_any_term_and_word_forms(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    seed_corpus(&app, ada.id).await;
    // No chunk holds every term: each term still finds its chunk.
    let results = search(
        &app,
        &ada.token,
        json!({"query": "herons sourdough xylophonist", "mode": "keyword"}),
    )
    .await;
    let found: HashSet<&str> = filenames(&results).into_iter().collect();
    assert_eq!(found, HashSet::from(["lighthouse.txt", "bread.txt"]));
    // Stemming: "volcano" matches "volcanoes".
    let results = search(
        &app,
        &ada.token,
        json!({"query": "volcano", "mode": "keyword"}),
    )
    .await;
    assert_eq!(filenames(&results), ["volcano.txt"]);
    // Nothing matches: an empty list, not an error.
    let results = search(
        &app,
        &ada.token,
        json!({"query": "xylophonist", "mode": "keyword"}),
    )
    .await;
    assert!(results.is_empty());
}

async fn hybrid_fuses_both_rankings(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    seed_corpus(&app, ada.id).await;
    let question = "herons lighthouse keeper";
    let hybrid = search(&app, &ada.token, json!({"query": question, "top_k": 5})).await;
    assert_eq!(hybrid[0]["filename"], "lighthouse.txt");
    // Reciprocal rank fusion (k = 60): first in both lists scores 1/61 for the keyword list
    // plus the vector list's weight over 61 (0.3 with the local embedder the tests run).
    let top = hybrid[0]["score"].as_f64().unwrap();
    let expected = (1.0 + vector_weight(LOCAL_EMBEDDING_MODEL)) / 61.0;
    assert!((top - expected).abs() < 1e-9, "fused score {top}");
    // Fusion also returns what only the vector ranking found (keyword matched one chunk).
    let keyword = search(
        &app,
        &ada.token,
        json!({"query": question, "mode": "keyword", "top_k": 5}),
    )
    .await;
    assert!(hybrid.len() > keyword.len(), "{hybrid:?} vs {keyword:?}");
    for pair in hybrid.windows(2) {
        assert!(pair[0]["score"].as_f64() >= pair[1]["score"].as_f64());
    }
}

async fn document_ids_restrict_the_search(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let ids = seed_corpus(&app, ada.id).await;
    let bread = ids.iter().find(|(name, _)| *name == "bread.txt").unwrap().1;
    let rust = ids.iter().find(|(name, _)| *name == "rust.txt").unwrap().1;
    for mode in ["vector", "keyword", "hybrid"] {
        let results = search(
            &app,
            &ada.token,
            json!({
                "query": "lighthouse herons sourdough borrow",
                "mode": mode,
                "top_k": 10,
                "document_ids": [bread, rust],
            }),
        )
        .await;
        let found: HashSet<&str> = filenames(&results).into_iter().collect();
        assert_eq!(found, HashSet::from(["bread.txt", "rust.txt"]), "{mode}");
    }
    // An empty list means every document.
    let results = search(
        &app,
        &ada.token,
        json!({"query": "herons", "mode": "keyword", "document_ids": []}),
    )
    .await;
    assert_eq!(filenames(&results), ["lighthouse.txt"]);
}

async fn only_ready_documents_are_searched(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let id = seed(&app, ada.id, "herons.txt", &[CORPUS[0].1]).await;
    let body = json!({"query": "herons lighthouse", "top_k": 5});
    assert_eq!(search(&app, &ada.token, body.clone()).await.len(), 1);
    // Reindexing puts the document back in the queue; its old chunks stay stored until
    // replaced, but a document that is not ready is not searched.
    app.store()
        .reindex_document(ada.id, id)
        .await
        .unwrap()
        .unwrap();
    for mode in ["vector", "keyword", "hybrid"] {
        let mut body = body.clone();
        body["mode"] = json!(mode);
        assert!(search(&app, &ada.token, body).await.is_empty(), "{mode}");
    }
}

async fn deleted_documents_disappear_from_every_mode(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let ids = seed_corpus(&app, ada.id).await;
    let lighthouse = ids[0].1;
    app.store()
        .delete_document(ada.id, lighthouse)
        .await
        .unwrap()
        .unwrap();
    for mode in ["vector", "keyword", "hybrid"] {
        let results = search(
            &app,
            &ada.token,
            json!({"query": "lighthouse keeper herons", "mode": mode, "top_k": 50}),
        )
        .await;
        assert!(
            !filenames(&results).contains(&"lighthouse.txt"),
            "{mode}: {results:?}"
        );
    }
}

async fn top_k_is_filled_from_the_callers_chunks_among_many(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let bob = caller(&app, "bob@example.com").await;
    // Ada owns many chunks about herons, Bob a few: Bob's nearest neighbours overall are
    // all Ada's, so a filter applied after a global top-k would leave him nothing.
    let many: Vec<String> = (0..120)
        .map(|i| format!("Heron sighting number {i}: the lighthouse keeper counted herons."))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    seed(&app, ada.id, "ada-herons.txt", &many).await;
    let few = [
        "Bob's notes: one heron near the harbour.",
        "Bob's notes: a lighthouse in the fog.",
        "Bob's notes: bread and herons at the market.",
        "Bob's notes: the keeper's cat.",
        "Bob's notes: seventeen gulls.",
        "Bob's notes: the northern cape at dawn.",
        "Bob's notes: an unrelated shopping list.",
    ];
    let bobs = seed(&app, bob.id, "bob.txt", &few).await;
    let small = seed(&app, bob.id, "bob-small.txt", &few[..2]).await;
    for mode in ["vector", "hybrid"] {
        let query = json!({"query": "how many herons did the lighthouse keeper count", "mode": mode, "top_k": 5});
        let results = search(&app, &bob.token, query.clone()).await;
        assert_eq!(results.len(), 5, "{mode}");
        assert!(
            results
                .iter()
                .all(|r| r["document_id"] == bobs.to_string()
                    || r["document_id"] == small.to_string()),
            "{mode}"
        );
        let mut restricted = query.clone();
        restricted["document_ids"] = json!([small]);
        assert_eq!(
            search(&app, &bob.token, restricted).await.len(),
            2,
            "{mode}"
        );
        let mut all = query;
        all["top_k"] = json!(50);
        assert_eq!(search(&app, &ada.token, all).await.len(), 50, "{mode}");
    }
}

async fn keyword_search_finds_the_callers_chunks_below_other_users_best(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let bob = caller(&app, "bob@example.com").await;
    // Ada's 150 chunks all rank above Bob's one: more than the embedded backend's first,
    // unfiltered pass over the full-text index keeps (100 for one result).
    let many: Vec<String> = (0..150)
        .map(|i| format!("Herons, herons and herons: flock {i}."))
        .collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    seed(&app, ada.id, "ada-herons.txt", &many).await;
    seed(
        &app,
        bob.id,
        "bob.txt",
        &["A long note about the harbour, with one heron in it."],
    )
    .await;
    let results = search(
        &app,
        &bob.token,
        json!({"query": "herons", "mode": "keyword", "top_k": 1}),
    )
    .await;
    assert_eq!(filenames(&results), ["bob.txt"]);
}

async fn another_users_chunks_are_never_returned(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let bob = caller(&app, "bob@example.com").await;
    let ids = seed_corpus(&app, ada.id).await;
    let all_of_adas: Vec<Uuid> = ids.iter().map(|(_, id)| *id).collect();
    for mode in ["vector", "keyword", "hybrid"] {
        for body in [
            json!({"query": "herons lighthouse sourdough borrow", "mode": mode, "top_k": 50}),
            json!({"query": "herons", "mode": mode, "document_ids": all_of_adas}),
        ] {
            assert!(search(&app, &bob.token, body).await.is_empty(), "{mode}");
        }
    }
    // Concurrent searches by both users never mix.
    let mut tasks = Vec::new();
    for round in 0..8 {
        let (token, expect_results) = if round % 2 == 0 {
            (ada.token.clone(), true)
        } else {
            (bob.token.clone(), false)
        };
        let client = app.client.clone();
        let url = app.url("/api/v1/search");
        tasks.push(tokio::spawn(async move {
            let answer: Value = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"query": "herons lighthouse", "top_k": 10}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let results = answer["results"].as_array().unwrap();
            assert_eq!(!results.is_empty(), expect_results, "{answer}");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn hostile_queries_never_fail(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    seed_corpus(&app, ada.id).await;
    let hostile = [
        "\"",
        "'",
        "\"herons",
        "herons\" OR \"",
        "*",
        "herons*",
        "NEAR(herons lighthouse)",
        "-herons",
        "AND OR NOT",
        "text:herons",
        "^herons",
        ")(",
        "'; DROP TABLE chunks; --",
        "100%",
        "\\",
        "🦀🦀",
        "a & b | !c <-> d",
        "héron naïve straße",
        "or",
        "the",
    ];
    for query in hostile {
        for mode in ["vector", "keyword", "hybrid"] {
            let response =
                search_raw(&app, &ada.token, json!({"query": query, "mode": mode})).await;
            assert_eq!(response.status(), StatusCode::OK, "{mode}: {query:?}");
        }
    }
    // Syntax characters are ignored, the words still count.
    let results = search(
        &app,
        &ada.token,
        json!({"query": "\"herons* -NEAR(", "mode": "keyword"}),
    )
    .await;
    assert_eq!(filenames(&results), ["lighthouse.txt"]);
    // The corpus is still there.
    assert_eq!(
        search(
            &app,
            &ada.token,
            json!({"query": "herons", "mode": "keyword"})
        )
        .await
        .len(),
        1
    );
}

async fn invalid_requests_are_422_with_field_paths(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let long = "x".repeat(2001);
    let too_many: Vec<Uuid> = (0..101).map(|_| Uuid::now_v7()).collect();
    for (body, field) in [
        (json!({}), "query"),
        (json!({"query": ""}), "query"),
        (json!({"query": "   \n"}), "query"),
        (json!({"query": long}), "query"),
        (json!({"query": 7}), "query"),
        (json!({"query": "ok", "top_k": 0}), "top_k"),
        (json!({"query": "ok", "top_k": 51}), "top_k"),
        (json!({"query": "ok", "top_k": "five"}), "top_k"),
        (json!({"query": "ok", "mode": "fuzzy"}), "mode"),
        (
            json!({"query": "ok", "document_ids": ["not-a-uuid"]}),
            "document_ids[0]",
        ),
        (
            json!({"query": "ok", "document_ids": too_many}),
            "document_ids",
        ),
    ] {
        let response = search_raw(&app, &ada.token, body.clone()).await;
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }
    let response = app
        .client
        .post(app.url("/api/v1/search"))
        .bearer_auth(&ada.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "malformed_json").await;
    // 2000 characters is still fine.
    let longest = "y".repeat(2000);
    search(&app, &ada.token, json!({"query": longest})).await;
}

async fn search_requires_authentication(app: TestApp) {
    let response = app
        .client
        .post(app.url("/api/v1/search"))
        .json(&json!({"query": "herons"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "unauthorized").await;
}

/// An OpenAI-compatible server whose embeddings endpoint always fails.
async fn failing_embeddings() -> String {
    let router = Router::new().route(
        "/v1/embeddings",
        post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/v1")
}

#[tokio::test]
async fn a_failing_embedding_provider_is_502_and_keyword_search_still_works() {
    let base_url = failing_embeddings().await;
    let app = search_app(
        Backend::Sqlite,
        &[
            ("EMBEDDING_MODEL", "text-embedding-3-small"),
            ("VECTOR_DIMENSION", "8"),
            ("OPENAI_BASE_URL", &base_url),
            ("OPENAI_API_KEY", "sk-test"),
            ("LLM_MAX_RETRIES", "0"),
        ],
    )
    .await
    .unwrap();
    let ada = caller(&app, "ada@example.com").await;
    for mode in ["vector", "hybrid"] {
        let response = search_raw(&app, &ada.token, json!({"query": "herons", "mode": mode})).await;
        assert_error(response, 502, "provider_error").await;
    }
    let results = search(
        &app,
        &ada.token,
        json!({"query": "herons", "mode": "keyword"}),
    )
    .await;
    assert!(results.is_empty());
}

#[tokio::test]
async fn a_repeated_query_is_embedded_once() {
    let mock = EmbeddingMock::start().await;
    let settings = mock.settings();
    let mut overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    overrides.push(("VECTOR_DIMENSION", "8"));
    let app = search_app(Backend::Sqlite, &overrides).await.unwrap();
    let ada = caller(&app, "ada@example.com").await;
    seed(&app, ada.id, "herons.txt", &[CORPUS[0].1]).await;
    let before = mock.calls().len();
    let body = json!({"query": "a question about herons", "mode": "vector"});
    assert_eq!(search(&app, &ada.token, body.clone()).await.len(), 1);
    assert_eq!(search(&app, &ada.token, body).await.len(), 1);
    let calls = mock.calls();
    assert_eq!(calls.len(), before + 1, "{calls:?}");
    assert_eq!(calls[before], ["a question about herons"]);
}

#[tokio::test]
async fn postgres_builds_an_hnsw_index_for_the_active_dimension_when_enabled() {
    let Some(app) = search_app(Backend::Postgres, &[]).await else {
        return;
    };
    let ragd::config::DatabaseUrl::Postgres(url) = &app.state.settings.database_url else {
        panic!("a postgres app");
    };
    let pool = sqlx::PgPool::connect(url.expose()).await.unwrap();
    let definition: Option<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'chunks_embedding_hnsw_384'",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    if !app.state.settings.pgvector_hnsw {
        assert_eq!(definition, None, "PGVECTOR_HNSW=false builds no index");
        return;
    }
    let definition = definition.expect("the HNSW index");
    assert!(definition.contains("hnsw"), "{definition}");
    assert!(definition.contains("halfvec(384)"), "{definition}");
    assert!(definition.contains("halfvec_cosine_ops"), "{definition}");
}
