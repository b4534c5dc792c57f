//! Grounded chat: with `use_rag`, the caller's ready documents are searched and the answer
//! carries the sources it was given, numbered as in the prompt (asserted at a mock provider),
//! first in a stream, and never from another user's documents.

use serde_json::{Value, json};

use crate::chat::{post, sse_data};
use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::llm_mock::{LlmMock, Reply};
use crate::search::{CORPUS, caller, search_app, seed, seed_corpus};

const QUESTION: &str = "How many herons did the lighthouse keeper count at dawn?";

fn ask(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

async fn mock_app(backend: Backend, mock: &LlmMock) -> Option<TestApp> {
    spawn_app_with(backend, &mock.settings(&[("INGEST_WORKERS", "0")])).await
}

crate::on_both_backends!(
    the_offline_provider_answers_from_the_retrieved_sources,
    the_prompt_upstream_holds_the_numbered_sources_the_citations_list,
    a_stream_starts_with_the_citations,
    without_documents_there_are_no_citations,
    another_users_documents_never_ground_an_answer,
);

async fn the_offline_provider_answers_from_the_retrieved_sources(backend: Backend) {
    let app = search_app(backend, &[]).await.unwrap();
    let ada = caller(&app, "ada@example.com").await;
    seed_corpus(&app, ada.id).await;
    let response = post(&app, &ada.token, "/api/v1/chat", &ask(QUESTION)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["provider"], "local");
    let citations = body["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{body}");
    assert!(citations.len() <= 5, "top_k defaults to 5");
    assert_eq!(citations[0]["filename"], "lighthouse.txt");
    assert!(citations[0]["score"].as_f64().unwrap() > 0.0);
    let answer = body["response"].as_str().unwrap();
    assert!(answer.contains("seventeen herons"), "{answer}");
    assert!(answer.contains("[1]"), "cites its source: {answer}");

    // use_rag false: the same question, no documents.
    let mut ungrounded = ask(QUESTION);
    ungrounded["use_rag"] = json!(false);
    let body: Value = post(&app, &ada.token, "/api/v1/chat", &ungrounded)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["citations"], json!([]));

    // document_ids and top_k restrict the sources.
    let bread = seed(&app, ada.id, "more-bread.txt", &[CORPUS[1].1]).await;
    let mut scoped = ask("sourdough starter herons");
    scoped["document_ids"] = json!([bread]);
    scoped["top_k"] = json!(1);
    let body: Value = post(&app, &ada.token, "/api/v1/chat", &scoped)
        .await
        .json()
        .await
        .unwrap();
    let citations = body["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 1, "{body}");
    assert_eq!(citations[0]["document_id"], bread.to_string());
}

async fn the_prompt_upstream_holds_the_numbered_sources_the_citations_list(backend: Backend) {
    let mock = LlmMock::start(Reply::Answer("Seventeen [1].")).await;
    let Some(app) = mock_app(backend, &mock).await else {
        return;
    };
    let ada = caller(&app, "ada@example.com").await;
    seed_corpus(&app, ada.id).await;
    let response = post(&app, &ada.token, "/api/v1/chat", &ask(QUESTION)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let citations = body["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{body}");
    assert_eq!(body["response"], "Seventeen [1].");

    let request = mock.requests().pop().unwrap();
    let messages = request["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    for (index, citation) in citations.iter().enumerate() {
        let source = format!("[{}] {}", index + 1, citation["filename"].as_str().unwrap());
        assert!(system.contains(&source), "{source} in {system}");
        assert!(system.contains(citation["text"].as_str().unwrap()));
    }
    assert!(!system.contains(&format!("[{}]", citations.len() + 1)));
    assert_eq!(messages.last().unwrap()["content"], QUESTION);

    // The OpenAI-compatible route opts in with `ragd`.
    let completion: Value = post(
        &app,
        &ada.token,
        "/v1/chat/completions",
        &json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": QUESTION}],
            "ragd": {"use_rag": true, "top_k": 2},
        }),
    )
    .await
    .json()
    .await
    .unwrap();
    let cited = completion["citations"].as_array().unwrap();
    assert!(!cited.is_empty() && cited.len() <= 2, "{completion}");
    assert_eq!(cited[0]["filename"], "lighthouse.txt");
}

async fn a_stream_starts_with_the_citations(backend: Backend) {
    let mock = LlmMock::start(Reply::Answer("Seventeen herons [1].")).await;
    let Some(app) = mock_app(backend, &mock).await else {
        return;
    };
    let ada = caller(&app, "ada@example.com").await;
    seed_corpus(&app, ada.id).await;
    let events =
        sse_data(post(&app, &ada.token, "/api/v1/chat/stream", &ask(QUESTION)).await).await;
    let citations = events[0]["citations"].as_array().unwrap();
    assert_eq!(citations[0]["filename"], "lighthouse.txt");
    assert!(events[1].get("token").is_some(), "{events:?}");
    assert_eq!(events.last().unwrap()["done"], true);
}

async fn without_documents_there_are_no_citations(backend: Backend) {
    let app = search_app(backend, &[]).await.unwrap();
    let ada = caller(&app, "ada@example.com").await;
    let body: Value = post(&app, &ada.token, "/api/v1/chat", &ask(QUESTION))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["citations"], json!([]));
    assert!(
        body["response"].as_str().unwrap().contains("no documents"),
        "{body}"
    );
    let events =
        sse_data(post(&app, &ada.token, "/api/v1/chat/stream", &ask(QUESTION)).await).await;
    assert!(events[0].get("citations").is_none(), "{events:?}");
}

async fn another_users_documents_never_ground_an_answer(backend: Backend) {
    let app = search_app(backend, &[]).await.unwrap();
    let ada = caller(&app, "ada@example.com").await;
    let bob = caller(&app, "bob@example.com").await;
    let ids = seed_corpus(&app, ada.id).await;
    let adas: Vec<_> = ids.iter().map(|(_, id)| *id).collect();
    let mut tasks = Vec::new();
    for round in 0..6 {
        let app_client = app.client.clone();
        let url = app.url("/api/v1/chat");
        let (token, mut body) = if round % 2 == 0 {
            (bob.token.clone(), ask(QUESTION))
        } else {
            (ada.token.clone(), ask(QUESTION))
        };
        if round == 2 {
            body["document_ids"] = json!(adas);
        }
        let is_bob = round % 2 == 0;
        tasks.push(tokio::spawn(async move {
            let answer: Value = app_client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let cited = answer["citations"].as_array().unwrap();
            assert_eq!(cited.is_empty(), is_bob, "{answer}");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
