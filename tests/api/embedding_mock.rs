//! A real OpenAI-compatible `/v1/embeddings` server on 127.0.0.1:0 that counts its calls.
//! Vectors are derived from each input's bytes, so a test can tell whose vector is whose.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

pub const DIMENSION: usize = 8;

#[derive(Clone)]
pub struct EmbeddingMock {
    pub base_url: String,
    calls: Arc<Mutex<Vec<Vec<String>>>>,
    /// When set, every call waits for a permit: lets a test hold ingestion mid-way.
    gate: Option<Arc<Semaphore>>,
}

/// The vector the mock returns for `text`.
pub fn vector_for(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; DIMENSION];
    for (i, byte) in text.bytes().enumerate() {
        vector[i % DIMENSION] += f32::from(byte);
    }
    vector[0] += text.len() as f32;
    vector
}

impl EmbeddingMock {
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// A mock whose calls block until `release` is called.
    pub async fn gated() -> Self {
        Self::serve(Some(Arc::new(Semaphore::new(0)))).await
    }

    async fn serve(gate: Option<Arc<Semaphore>>) -> Self {
        let calls: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let recorded = calls.clone();
        let held = gate.clone();
        let router = Router::new().route(
            "/v1/embeddings",
            post(move |Json(body): Json<Value>| {
                let recorded = recorded.clone();
                let held = held.clone();
                async move {
                    let inputs: Vec<String> = match &body["input"] {
                        Value::String(one) => vec![one.clone()],
                        Value::Array(many) => many
                            .iter()
                            .map(|v| v.as_str().unwrap_or_default().to_owned())
                            .collect(),
                        _ => Vec::new(),
                    };
                    recorded.lock().unwrap().push(inputs.clone());
                    if let Some(gate) = held {
                        gate.acquire().await.unwrap().forget();
                    }
                    let data: Vec<Value> = inputs
                        .iter()
                        .enumerate()
                        .map(|(index, text)| {
                            json!({"object": "embedding", "index": index, "embedding": vector_for(text)})
                        })
                        .collect();
                    Json(json!({
                        "object": "list",
                        "data": data,
                        "model": body["model"],
                        "usage": {"prompt_tokens": inputs.len(), "total_tokens": inputs.len()}
                    }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            base_url: format!("http://{address}/v1"),
            calls,
            gate,
        }
    }

    /// Every call so far, each as its list of inputs.
    pub fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }

    /// Lets every held and future call through.
    pub fn release(&self) {
        if let Some(gate) = &self.gate {
            gate.add_permits(Semaphore::MAX_PERMITS / 2);
        }
    }

    /// Settings that make ragd embed with this mock.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("EMBEDDING_MODEL", "text-embedding-3-small".into()),
            ("OPENAI_BASE_URL", self.base_url.clone()),
            ("OPENAI_API_KEY", "sk-test".into()),
        ]
    }
}
