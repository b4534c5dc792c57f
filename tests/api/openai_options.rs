//! The sampling settings (`top_p`, `stop`, `seed`, the penalties), `response_format` and the
//! fields only OpenAI's API knows (`reasoning_effort`, `user`...) of `/v1/chat/completions`:
//! passed on to the provider as sent, held to OpenAI's bounds, and refused where the model
//! cannot honour them.

use serde_json::{Value, json};

use crate::chat::post;
use crate::helpers::{signed_up, spawn_app};
use crate::llm_mock::Reply;
use crate::openai_compat::{
    app_with_mock, assert_refused_before_any_call, assert_the_local_model_refuses,
};

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Count to three"}]})
}

#[tokio::test]
async fn sampling_settings_and_the_response_format_reach_the_provider_as_sent() {
    let (app, mock, token) = app_with_mock(Reply::Answer("{\"n\": 3}")).await;
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}},
        "required": ["n"], "additionalProperties": false});
    let mut request = ask("gpt-4o-mini");
    for (field, value) in [
        ("top_p", json!(0.5)),
        ("stop", json!("END")),
        ("seed", json!(42)),
        ("presence_penalty", json!(0.25)),
        ("frequency_penalty", json!(-1)),
        ("logprobs", json!(false)),
        ("reasoning_effort", json!("low")),
        ("user", json!("user-1234")),
        ("logit_bias", json!({"50256": -100})),
        (
            "response_format",
            json!({"type": "json_schema", "json_schema": {"name": "count", "schema": schema, "strict": true}}),
        ),
    ] {
        request[field] = value;
    }

    let response = post(&app, &token, "/v1/chat/completions", &request).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "{\"n\": 3}");
    let sent = &mock.requests()[0];
    assert_eq!(sent["top_p"], 0.5);
    assert_eq!(sent["stop"], json!(["END"]), "one sequence goes as a list");
    assert_eq!(sent["seed"], 42);
    assert_eq!(sent["presence_penalty"], 0.25);
    assert_eq!(sent["frequency_penalty"], -1.0);
    assert_eq!(sent["response_format"], request["response_format"]);
    assert!(sent.get("logprobs").is_none(), "{sent}");
    // Fields only OpenAI's API knows go to OpenAI-compatible servers as sent.
    assert_eq!(sent["reasoning_effort"], "low");
    assert_eq!(sent["user"], "user-1234");
    assert_eq!(sent["logit_bias"], json!({"50256": -100}));

    let plain = post(&app, &token, "/v1/chat/completions", &ask("gpt-4o-mini")).await;
    assert_eq!(plain.status(), 200);
    let sent = &mock.requests()[1];
    for field in [
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "response_format",
    ] {
        assert!(
            sent.get(field).is_none(),
            "{field} was not asked for: {sent}"
        );
    }
}

#[tokio::test]
async fn settings_out_of_openais_bounds_are_refused_before_any_call() {
    let (app, mock, token) = app_with_mock(Reply::Answer("never")).await;
    let cases = [
        ("top_p", json!(1.5), "top_p"),
        ("presence_penalty", json!(2.5), "presence_penalty"),
        ("frequency_penalty", json!(-3), "frequency_penalty"),
        ("stop", json!(["a", "b", "c", "d", "e"]), "stop"),
        ("stop", json!([""]), "stop"),
        ("logprobs", json!(true), "logprobs"),
        ("user", json!(123), "user"),
        ("top_logprobs", json!(3), "top_logprobs"),
        (
            "response_format",
            json!({"type": "xml"}),
            "response_format.type",
        ),
        (
            "response_format",
            json!({"type": "json_schema"}),
            "response_format.json_schema",
        ),
        (
            "response_format",
            json!({"type": "json_schema", "json_schema": {"name": "a b"}}),
            "response_format.json_schema.name",
        ),
        (
            "response_format",
            json!({"type": "json_schema", "json_schema": {"name": "count", "schema": [1]}}),
            "response_format.json_schema.schema",
        ),
    ];
    let requests = cases.into_iter().map(|(field, value, param)| {
        let mut request = ask("gpt-4o-mini");
        request[field] = value;
        (request, param)
    });
    assert_refused_before_any_call(&app, &token, &mock, requests).await;
}

#[tokio::test]
async fn the_local_model_refuses_to_promise_json() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;
    let mut request = ask("local/extractive");
    request["response_format"] = json!({"type": "json_object"});

    assert_the_local_model_refuses(&app, &token, &request).await;

    request["response_format"] = json!({"type": "text"});
    let text = post(&app, &token, "/v1/chat/completions", &request).await;
    assert_eq!(text.status(), 200);
}
