//! The official OpenAI Python SDK, unchanged, pointed at ragd's /v1: models, a completion, a
//! stream with usage, `extra_body` RAG, embeddings (the SDK asks for base64), an error, and a
//! tool-calling round trip (whole and streamed).
//! Skips with one line when python3 or the `openai` package is absent (never in CI, where
//! scripts/test.sh installs it). The harness and the checks of what an SDK saw are shared with
//! the Node SDK's test (openai_node_sdk.rs).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::llm_mock::{COMPLETION_TOKENS, LlmMock, PROMPT_TOKENS, REFUSAL, Reply};
use crate::openai_compat::app_with_mock;

const SCRIPT: &str = r#"
import json, os
import openai
from openai import OpenAI

client = OpenAI(base_url=os.environ["RAGD_BASE_URL"], api_key=os.environ["RAGD_API_KEY"], max_retries=0)
messages = [{"role": "user", "content": "Say hello"}]
out = {"models": [model.id for model in client.models.list()]}

completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
out["content"] = completion.choices[0].message.content
out["total_tokens"] = completion.usage.total_tokens

parts, usage = [], None
stream = client.chat.completions.create(
    model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True})
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage.total_tokens
out["streamed"] = "".join(parts)
out["stream_total_tokens"] = usage

grounded = client.chat.completions.create(
    model="gpt-4o-mini", messages=messages, extra_body={"ragd": {"use_rag": True, "top_k": 3}})
out["citations"] = (grounded.model_extra or {}).get("citations")

embeddings = client.embeddings.create(model=os.environ["RAGD_EMBEDDING_MODEL"], input=["one", "two"])
out["embedding_lengths"] = [len(item.embedding) for item in embeddings.data]

try:
    client.chat.completions.create(model="ollama/llama3.2", messages=messages)
except openai.APIStatusError as error:
    out["error_status"] = error.status_code
    out["error_code"] = error.code
print(json.dumps(out))
"#;

const TOOLS_SCRIPT: &str = r#"
import json, os
from openai import OpenAI

client = OpenAI(base_url=os.environ["RAGD_BASE_URL"], api_key=os.environ["RAGD_API_KEY"], max_retries=0)
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]
messages = [{"role": "user", "content": "Weather and time in Paris?"}]
out = {}

completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
message = completion.choices[0].message
out["finish_reason"] = completion.choices[0].finish_reason
out["calls"] = [[call.id, call.function.name, json.loads(call.function.arguments)] for call in message.tool_calls]

calls = {}
for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools, stream=True):
    for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
        call = calls.setdefault(piece.index, {"id": None, "name": "", "arguments": ""})
        call["id"] = piece.id or call["id"]
        call["name"] += piece.function.name or ""
        call["arguments"] += piece.function.arguments or ""
out["streamed_calls"] = [[c["id"], c["name"], json.loads(c["arguments"])] for _, c in sorted(calls.items())]

# The SDK's own message object goes back as it is, followed by the results.
messages.append(message)
for call in message.tool_calls:
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18C" if call.function.name == "get_weather" else "14:05"})
answer = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
out["answer_finish_reason"] = answer.choices[0].finish_reason
print(json.dumps(out))
"#;

/// Structured outputs through the SDK's own helpers: `parse` with a Pydantic model, whole and
/// streamed; prints what the SDK parsed, or the refusal it read.
const PARSE_SCRIPT: &str = r#"
import json, os
from pydantic import BaseModel
from openai import OpenAI

class Count(BaseModel):
    n: int

client = OpenAI(base_url=os.environ["RAGD_BASE_URL"], api_key=os.environ["RAGD_API_KEY"], max_retries=0)
messages = [{"role": "user", "content": "Count to three"}]
out = {}
message = client.chat.completions.parse(model="gpt-4o-mini", messages=messages, response_format=Count).choices[0].message
out["parsed"] = message.parsed.n if message.parsed else None
out["refusal"] = message.refusal
with client.chat.completions.stream(model="gpt-4o-mini", messages=messages, response_format=Count) as stream:
    message = stream.get_final_completion().choices[0].message
out["streamed_parsed"] = message.parsed.n if message.parsed else None
out["streamed_refusal"] = message.refusal
print(json.dumps(out))
"#;

fn sdk_available() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|output| output.status.success());
    sdk_installed(found, "python3 with the openai package")
}

/// `found`, after skipping the test with one line when the SDK (`what`) is not installed, or
/// failing it in CI, where scripts/test.sh installs it.
pub fn sdk_installed(found: bool, what: &str) -> bool {
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{what} must be installed in CI (scripts/test.sh installs it)"
        );
        eprintln!("skipping: {what} is not installed");
    }
    found
}

/// A ragd whose OpenAI-compatible provider is a mock answering `reply`, and an `rk_` API key
/// an SDK authenticates with.
pub async fn sdk_target(reply: Reply) -> (LlmMock, TestApp, String) {
    let (app, mock, token) = app_with_mock(reply).await;
    let api_key = app.new_api_key(&token, "sdk").await;
    assert!(api_key.starts_with("rk_"));
    (mock, app, api_key)
}

/// Runs `script` (an SDK's program and its arguments) against `app`, authenticated by
/// `api_key`; returns the JSON it prints.
pub async fn run_sdk(script: &[&str], app: &TestApp, api_key: &str) -> Value {
    let (program, args) = script.split_first().unwrap();
    let run = tokio::process::Command::new(program)
        .args(args)
        .env("RAGD_BASE_URL", app.url("/v1"))
        .env("RAGD_API_KEY", api_key)
        .env("RAGD_EMBEDDING_MODEL", app.state.embedder.model())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the SDK script finished")
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// What every SDK must have seen of `app` answering with the mock's "Hello from the mock".
pub fn assert_the_sdk_saw_every_answer(out: &Value, app: &TestApp) {
    let total = PROMPT_TOKENS + COMPLETION_TOKENS;
    assert_eq!(out["models"], json!(["gpt-4o-mini", "local/extractive"]));
    assert_eq!(out["content"], "Hello from the mock");
    assert_eq!(out["total_tokens"], total);
    assert_eq!(out["streamed"], "Hello from the mock");
    assert_eq!(out["stream_total_tokens"], total);
    assert_eq!(out["citations"], json!([]));
    let dimension = app.state.embedder.dimension();
    assert_eq!(out["embedding_lengths"], json!([dimension, dimension]));
    assert_eq!(out["error_status"], 503);
    assert_eq!(out["error_code"], "provider_not_configured");
}

/// What every SDK must have seen of the mock's two tool calls, and what it sent back.
pub fn assert_the_sdk_called_tools_and_sent_results_back(out: &Value, mock: &LlmMock) {
    let calls = json!([
        ["call_weather", "get_weather", {"city": "Paris"}],
        ["call_time", "get_time", {}]
    ]);
    assert_eq!(out["finish_reason"], "tool_calls");
    assert_eq!(out["calls"], calls);
    assert_eq!(out["streamed_calls"], calls);
    assert_eq!(out["answer_finish_reason"], "tool_calls");
    let sent_back = &mock.requests()[2]["messages"];
    assert_eq!(sent_back[1]["role"], "assistant");
    assert_eq!(sent_back[1]["tool_calls"][0]["id"], "call_weather");
    assert_eq!(
        sent_back[2],
        json!({"role": "tool", "tool_call_id": "call_weather", "content": "18C"})
    );
    assert_eq!(sent_back[3]["content"], "14:05");
}

#[tokio::test]
async fn the_official_python_sdk_works_unchanged() {
    if !sdk_available() {
        return;
    }
    let (_mock, app, api_key) = sdk_target(Reply::Answer("Hello from the mock")).await;

    let out = run_sdk(&["python3", "-c", SCRIPT], &app, &api_key).await;

    assert_the_sdk_saw_every_answer(&out, &app);
}

#[tokio::test]
async fn the_official_python_sdk_calls_tools_and_sends_their_results_back() {
    if !sdk_available() {
        return;
    }
    let (mock, app, api_key) = sdk_target(Reply::ToolCalls).await;

    let out = run_sdk(&["python3", "-c", TOOLS_SCRIPT], &app, &api_key).await;

    assert_the_sdk_called_tools_and_sent_results_back(&out, &mock);
}

#[tokio::test]
async fn the_official_python_sdk_parses_structured_answers_and_reads_refusals() {
    if !sdk_available() {
        return;
    }
    let (mock, app, api_key) = sdk_target(Reply::Answer("{\"n\": 3}")).await;

    let out = run_sdk(&["python3", "-c", PARSE_SCRIPT], &app, &api_key).await;

    assert_eq!(
        out,
        json!({"parsed": 3, "refusal": null, "streamed_parsed": 3, "streamed_refusal": null})
    );
    let format = &mock.requests()[0]["response_format"];
    assert_eq!(format["type"], "json_schema", "{format}");
    assert_eq!(format["json_schema"]["name"], "Count");
    assert_eq!(format["json_schema"]["strict"], true);

    let (_mock, app, api_key) = sdk_target(Reply::Refuses).await;

    let out = run_sdk(&["python3", "-c", PARSE_SCRIPT], &app, &api_key).await;

    assert_eq!(
        out,
        json!({"parsed": null, "refusal": REFUSAL, "streamed_parsed": null, "streamed_refusal": REFUSAL})
    );
}
