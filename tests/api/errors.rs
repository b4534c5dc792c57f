//! Every error, from any layer, answers the contract's shape. The framework-level cases
//! (malformed JSON, validation, body limit, panics) are driven through the real layer stack
//! around a few routes of the test's own, so they do not depend on any one endpoint.

use std::collections::HashMap;

use axum::Router;
use axum::routing::{get, post};
use ragd::config::Settings;
use ragd::http::apply_layers;
use ragd::http::error::FieldError;
use ragd::http::extract::{ValidJson, Validate};
use serde::Deserialize;

use crate::helpers::{assert_error, spawn_app};

#[derive(Deserialize)]
struct ChatLike {
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    content: String,
}

impl Validate for ChatLike {
    fn validate(&self) -> Vec<FieldError> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.content.is_empty())
            .map(|(i, _)| FieldError::new(format!("messages[{i}].content"), "must not be empty"))
            .collect()
    }
}

async fn panicking_handler() -> &'static str {
    panic!("a bug in a handler")
}

/// The real layer stack around an echo route and a panicking route, on a real socket.
async fn spawn_layered() -> String {
    let settings = Settings::from_map(&HashMap::from([(
        "MAX_REQUEST_BODY_KB".to_string(),
        "1".to_string(),
    )]))
    .unwrap();
    let routes =
        Router::new()
            .route(
                "/echo",
                post(|ValidJson(body): ValidJson<ChatLike>| async move {
                    body.messages.len().to_string()
                }),
            )
            .route("/panic", get(panicking_handler))
            .route("/v1/panic", get(panicking_handler));
    let app = apply_layers(routes, &settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_error_shape() {
    let app = spawn_app().await;
    assert_error(app.get("/no/such/route").await, 404, "not_found").await;
}

#[tokio::test]
async fn unknown_openai_routes_use_openais_error_shape() {
    let app = spawn_app().await;
    let response = app.get("/v1/no-such-thing").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error");
    assert!(body["error"]["message"].is_string());
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_405_in_the_error_shape() {
    let app = spawn_app().await;
    let response = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_error(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let address = spawn_layered().await;
    let response = reqwest::Client::new()
        .post(format!("{address}/echo"))
        .header("content-type", "application/json")
        .body("{\"messages\": [")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "malformed_json").await;
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_422_with_the_field_path() {
    let address = spawn_layered().await;
    let response = reqwest::Client::new()
        .post(format!("{address}/echo"))
        .json(&serde_json::json!({"messages": [{"content": "hi"}, {"content": 7}]}))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 422, "validation_error").await;
    assert_eq!(body["error"]["details"][0]["field"], "messages[1].content");
}

#[tokio::test]
async fn a_missing_field_is_named_where_it_is_missing() {
    let address = spawn_layered().await;
    let client = reqwest::Client::new();
    for (body, field) in [
        (serde_json::json!({}), "messages"),
        (
            serde_json::json!({"messages": [{"content": "hi"}, {}]}),
            "messages[1].content",
        ),
    ] {
        let response = client
            .post(format!("{address}/echo"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 422, "validation_error").await;
        assert_eq!(error["error"]["details"][0]["field"], field, "{error}");
    }
}

#[tokio::test]
async fn a_body_failing_validation_is_422_listing_each_field() {
    let address = spawn_layered().await;
    let response = reqwest::Client::new()
        .post(format!("{address}/echo"))
        .json(
            &serde_json::json!({"messages": [{"content": ""}, {"content": "ok"}, {"content": ""}]}),
        )
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 422, "validation_error").await;
    let fields: Vec<_> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].clone())
        .collect();
    assert_eq!(fields, ["messages[0].content", "messages[2].content"]);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let address = spawn_layered().await;
    let response = reqwest::Client::new()
        .post(format!("{address}/echo"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let address = spawn_layered().await;
    let big = "x".repeat(4096);
    let response = reqwest::Client::new()
        .post(format!("{address}/echo"))
        .json(&serde_json::json!({"messages": [{"content": big}]}))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_in_the_error_shape_and_the_server_survives() {
    let address = spawn_layered().await;
    let client = reqwest::Client::new();
    let response = client.get(format!("{address}/panic")).send().await.unwrap();
    let body = assert_error(response, 500, "internal_error").await;
    assert!(
        !body.to_string().contains("a bug in a handler"),
        "panic text must not leak: {body}"
    );
    let again = client.get(format!("{address}/panic")).send().await.unwrap();
    assert_eq!(again.status(), 500);
    let openai = client
        .get(format!("{address}/v1/panic"))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 500);
    let body: serde_json::Value = openai.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");
}

#[tokio::test]
async fn an_incoming_request_id_is_echoed_on_success_and_error() {
    let app = spawn_app().await;
    for path in ["/health", "/missing"] {
        let response = app
            .client
            .get(app.url(path))
            .header("x-request-id", "trace-42")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "trace-42");
    }
    let response = app
        .client
        .get(app.url("/missing"))
        .header("x-request-id", "trace-43")
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], "trace-43");
}

#[tokio::test]
async fn a_request_without_an_id_gets_a_fresh_one_and_junk_ids_are_replaced() {
    let app = spawn_app().await;
    let first = app.get("/health").await.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let second = app.get("/health").await.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_ne!(first, second);
    assert!(uuid::Uuid::parse_str(&first).is_ok());
    let long = "x".repeat(500);
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], long.as_str());
}
