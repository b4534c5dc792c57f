//! The embedded backend's in-process search index is never stale: chunks written or removed
//! by this process, or by another process on the same database (here: a second store handle,
//! with its own pool and index, as `ragd ingest` or `ragd user delete` would have), show in
//! the very next search, by vector and by keyword; and a memory budget too small for a user's
//! chunks falls back to SQLite's own exact scan and FTS5. Run on both backends: PostgreSQL
//! must behave the same.

use std::collections::HashSet;

use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::search::{
    CORPUS, caller, filenames, search, search_app, search_app_on, seed, seed_through,
};

crate::on_both_backends!(
    app = search_app_on;
    writes_by_this_process_show_in_the_next_search,
    writes_by_another_process_show_in_the_next_search,
);

/// The files a search in `mode` finds for `query` (top 50).
async fn found(app: &TestApp, token: &str, mode: &str, query: &str) -> HashSet<String> {
    let results = search(
        app,
        token,
        json!({"query": query, "mode": mode, "top_k": 50}),
    )
    .await;
    filenames(&results).into_iter().map(str::to_owned).collect()
}

async fn writes_by_this_process_show_in_the_next_search(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    seed(&app, ada.id, "lighthouse.txt", &[CORPUS[0].1]).await;
    for mode in ["vector", "keyword", "hybrid"] {
        // The first search loads Ada's chunks; each later one must see every change.
        assert_eq!(
            found(&app, &ada.token, mode, "herons").await,
            HashSet::from(["lighthouse.txt".to_owned()])
        );
    }
    let bread = seed(&app, ada.id, "bread.txt", &[CORPUS[1].1]).await;
    for mode in ["vector", "keyword", "hybrid"] {
        assert!(
            found(&app, &ada.token, mode, "sourdough")
                .await
                .contains("bread.txt")
        );
    }
    app.store().delete_document(ada.id, bread).await.unwrap();
    for mode in ["vector", "keyword", "hybrid"] {
        assert!(
            !found(&app, &ada.token, mode, "sourdough")
                .await
                .contains("bread.txt")
        );
    }
}

async fn writes_by_another_process_show_in_the_next_search(app: TestApp) {
    let ada = caller(&app, "ada@example.com").await;
    let bob = caller(&app, "bob@example.com").await;
    let lighthouse = seed(&app, ada.id, "lighthouse.txt", &[CORPUS[0].1]).await;
    seed(&app, bob.id, "bob.txt", &[CORPUS[2].1]).await;
    for mode in ["vector", "keyword", "hybrid"] {
        assert_eq!(
            found(&app, &ada.token, mode, "herons").await,
            HashSet::from(["lighthouse.txt".to_owned()])
        );
        assert_eq!(
            found(&app, &bob.token, mode, "borrow").await,
            HashSet::from(["bob.txt".to_owned()])
        );
    }
    let other = ragd::store::connect(&app.state.settings).await.unwrap();

    // Added.
    let bread = seed_through(&*other, &app, ada.id, "bread.txt", &[CORPUS[1].1]).await;
    for mode in ["vector", "hybrid"] {
        assert_eq!(
            found(&app, &ada.token, mode, "sourdough").await,
            HashSet::from(["lighthouse.txt".to_owned(), "bread.txt".to_owned()]),
            "{mode}"
        );
    }
    assert_eq!(
        found(&app, &ada.token, "keyword", "sourdough").await,
        HashSet::from(["bread.txt".to_owned()])
    );
    // Deleted.
    other.delete_document(ada.id, lighthouse).await.unwrap();
    for mode in ["vector", "hybrid"] {
        assert_eq!(
            found(&app, &ada.token, mode, "herons").await,
            HashSet::from(["bread.txt".to_owned()]),
            "{mode}"
        );
    }
    assert!(
        found(&app, &ada.token, "keyword", "herons")
            .await
            .is_empty()
    );
    // No longer ready.
    other.reindex_document(ada.id, bread).await.unwrap();
    for mode in ["vector", "keyword", "hybrid"] {
        assert!(found(&app, &ada.token, mode, "sourdough").await.is_empty());
    }
    // Bob's copy was never touched, and never saw Ada's writes.
    for mode in ["vector", "hybrid"] {
        assert_eq!(
            found(&app, &bob.token, mode, "herons sourdough").await,
            HashSet::from(["bob.txt".to_owned()])
        );
    }
    assert!(
        found(&app, &bob.token, "keyword", "herons sourdough")
            .await
            .is_empty()
    );
    // A user deleted by another process: their vectors are gone from the file, and the
    // search by id finds nothing (their token no longer resolves, so ask the store).
    other.delete_user(bob.id).await.unwrap();
    let scope = ragd::store::SearchScope {
        user_id: bob.id,
        document_ids: &[],
        embedding_model: app.state.embedder.model(),
    };
    let query = app
        .state
        .embedder
        .embed(&["borrow".to_owned()])
        .await
        .unwrap();
    let hits = app
        .store()
        .vector_search(scope, &query[0], 10)
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    let hits = app
        .store()
        .keyword_search(scope, &["borrow".to_owned()], 10)
        .await
        .unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    other.close().await;
}

#[tokio::test]
async fn a_budget_too_small_for_the_users_chunks_falls_back_to_sqlite() {
    let app = search_app(Backend::Sqlite, &[("SEARCH_INDEX_MEMORY_MB", "0")])
        .await
        .unwrap();
    let ada = caller(&app, "ada@example.com").await;
    seed(&app, ada.id, "lighthouse.txt", &[CORPUS[0].1]).await;
    seed(&app, ada.id, "bread.txt", &[CORPUS[1].1]).await;
    for mode in ["vector", "keyword", "hybrid"] {
        let results = search(
            &app,
            &ada.token,
            json!({"query": "what does a sourdough starter need", "mode": mode, "top_k": 1}),
        )
        .await;
        assert_eq!(filenames(&results), ["bread.txt"], "{mode}");
    }
}
