//! The official OpenAI Node SDK (npm `openai`, pinned in tests/node-sdk/package.json),
//! unchanged, pointed at ragd's /v1: the same checks as the Python SDK's test, plus what is
//! particular to Node (the body field `ragd` sent as it is, base64 embeddings decoded by
//! default, the error class). The script is tests/node-sdk/sdk.mjs.
//! Skips with one line when node or the installed SDK is absent (never in CI, where
//! scripts/test.sh runs `npm ci` in tests/node-sdk). openai 7 declares Node >= 22; it runs on
//! the Node 20 of the suite's machine, where npm only warns.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::llm_mock::Reply;
use crate::openai_sdk::{
    assert_the_sdk_called_tools_and_sent_results_back, assert_the_sdk_saw_every_answer, run_sdk,
    sdk_installed, sdk_target,
};

fn sdk_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node-sdk")
}

fn sdk_available() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    let found = node && sdk_folder().join("node_modules/openai").is_dir();
    sdk_installed(found, "node with tests/node-sdk/node_modules/openai")
}

/// Runs `node tests/node-sdk/sdk.mjs MODE` against `app`; returns the JSON it prints.
async fn run_node_sdk(mode: &str, app: &TestApp, api_key: &str) -> Value {
    let script = sdk_folder().join("sdk.mjs");
    let script = script.to_str().unwrap();
    run_sdk(&["node", script, mode], app, api_key).await
}

#[tokio::test]
async fn the_official_node_sdk_works_unchanged() {
    if !sdk_available() {
        return;
    }
    let (mock, app, api_key) = sdk_target(Reply::Answer("Hello from the mock")).await;

    let out = run_node_sdk("answers", &app, &api_key).await;

    assert_the_sdk_saw_every_answer(&out, &app);
    assert_eq!(out["base64_types"], json!(["string", "string"]));
    assert_eq!(out["decoded_equals_float"], true);
    assert_eq!(out["error_class"], "InternalServerError");
    assert!(out["error_request_id"].is_string(), "{out}");
    let sent = mock.requests();
    assert_eq!(sent.len(), 3, "whole, streamed, grounded: {sent:?}");
    assert_eq!(sent[0]["model"], "gpt-4o-mini");
    assert_eq!(
        sent[0]["messages"],
        json!([{"role": "user", "content": "Say hello"}])
    );
    assert_eq!(sent[1]["stream"], true);
    assert!(sent[2].get("ragd").is_none(), "ragd's field stays in ragd");
}

#[tokio::test]
async fn the_official_node_sdk_calls_tools_and_sends_their_results_back() {
    if !sdk_available() {
        return;
    }
    let (mock, app, api_key) = sdk_target(Reply::ToolCalls).await;

    let out = run_node_sdk("tools", &app, &api_key).await;

    assert_the_sdk_called_tools_and_sent_results_back(&out, &mock);
    assert_eq!(out["content"], Value::Null);
    assert_eq!(out["streamed_finish_reason"], "tool_calls");
    let sent = mock.requests();
    assert_eq!(sent.len(), 3, "whole, streamed, results: {sent:?}");
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time",
            "parameters": {"type": "object", "properties": {}}}}
    ]);
    assert!(
        sent.iter().all(|request| request["tools"] == tools),
        "{sent:?}"
    );
    assert_eq!(sent[1]["stream"], true);
    assert_eq!(
        sent[2]["messages"][1]["tool_calls"][1],
        json!({"id": "call_time", "type": "function",
            "function": {"name": "get_time", "arguments": "{}"}})
    );
}
