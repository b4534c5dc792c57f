//! Tool calling through `/v1/chat/completions`: tools offered, calls answered (whole and
//! streamed) in OpenAI's shapes, results sent back; the same through Anthropic's and
//! Ollama's native wire formats; and requests ragd cannot honour refused before any call.

use axum::Router;
use axum::routing::post as route_post;
use serde_json::{Value, json};

use crate::chat::{post, sse_data};
use crate::helpers::{signed_up, spawn_app};
use crate::llm_mock::Reply;
use crate::native_providers::{Seen, app_with_native, body_of, serve};
use crate::openai_compat::{
    app_with_mock, assert_refused_before_any_call, assert_the_local_model_refuses,
};

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

fn time_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_time"}})
}

fn ask_with_tools(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Weather and time in Paris?"}],
        "tools": [weather_tool(), time_tool()]})
}

/// The conversation after the model's calls: its calls and both results sent back.
fn results_sent_back(model: &str) -> Value {
    json!({"model": model, "tools": [weather_tool(), time_tool()], "messages": [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_weather", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_time", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_weather", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "call_time", "content": [{"type": "text", "text": "14:05"}]}
    ]})
}

#[tokio::test]
async fn a_whole_answer_carries_the_calls_in_openais_shape() {
    let (app, mock, token) = app_with_mock(Reply::ToolCalls).await;

    let mut request = ask_with_tools("gpt-4o-mini");
    request["tool_choice"] = json!("required");
    request["parallel_tool_calls"] = json!(true);
    let response = post(&app, &token, "/v1/chat/completions", &request).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{body}");
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [
            {"id": "call_weather", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_time", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]})
    );
    let sent = &mock.requests()[0];
    assert_eq!(sent["tools"], json!([weather_tool(), time_tool()]));
    assert_eq!(sent["tool_choice"], "required");
    assert_eq!(sent["parallel_tool_calls"], true);
}

#[tokio::test]
async fn streamed_calls_arrive_in_pieces_then_finish_with_tool_calls() {
    let (app, _mock, token) = app_with_mock(Reply::ToolCalls).await;

    let mut request = ask_with_tools("gpt-4o-mini");
    request["stream"] = json!(true);
    let events = sse_data(post(&app, &token, "/v1/chat/completions", &request).await).await;

    assert_eq!(events.last(), Some(&json!("[DONE]")));
    let pieces: Vec<&Value> = events
        .iter()
        .filter_map(|event| event["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(
        pieces,
        [
            &json!([{"index": 0, "id": "call_weather", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]),
            &json!([{"index": 0, "function": {"arguments": "{\"city\":"}}]),
            &json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}]),
            &json!([{"index": 1, "id": "call_time", "type": "function",
                "function": {"name": "get_time", "arguments": "{}"}}]),
        ]
    );
    let finish: Vec<&Value> = events
        .iter()
        .filter_map(|event| event["choices"][0].get("finish_reason"))
        .filter(|reason| !reason.is_null())
        .collect();
    assert_eq!(finish, [&json!("tool_calls")]);
    for event in &events[..events.len() - 1] {
        assert_eq!(event["object"], "chat.completion.chunk", "{event}");
    }
}

#[tokio::test]
async fn calls_and_their_results_sent_back_reach_the_provider_in_openais_shape() {
    let (app, mock, token) = app_with_mock(Reply::Answer("It is 18C and 14:05 in Paris.")).await;

    let response = post(
        &app,
        &token,
        "/v1/chat/completions",
        &results_sent_back("gpt-4o-mini"),
    )
    .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "It is 18C and 14:05 in Paris."
    );
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    let sent = &mock.requests()[0];
    assert_eq!(
        sent["messages"][1],
        results_sent_back("gpt-4o-mini")["messages"][1]
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_weather", "content": "18C, sunny"})
    );
    assert_eq!(
        sent["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_time", "content": "14:05"})
    );
}

#[tokio::test]
async fn tool_requests_ragd_cannot_honour_are_refused_before_any_call() {
    let (app, mock, token) = app_with_mock(Reply::ToolCalls).await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut request = ask_with_tools("gpt-4o-mini");
        change(&mut request);
        request
    };
    let cases = [
        (
            with(&|r| r["tools"][0]["function"]["name"] = json!("get weather!")),
            "tools[0].function.name",
        ),
        (
            with(&|r| r["tools"][1]["type"] = json!("code_interpreter")),
            "tools[1].type",
        ),
        (
            with(&|r| r["tools"][0]["function"]["parameters"] = json!("a string")),
            "tools[0].function.parameters",
        ),
        (
            with(&|r| {
                r["tool_choice"] = json!({"type": "function", "function": {"name": "get_stock"}})
            }),
            "tool_choice",
        ),
        (
            with(&|r| r["tool_choice"] = json!("sometimes")),
            "tool_choice",
        ),
        (
            with(&|r| {
                r["tool_choice"] = json!({"type": "allowed_tools",
                    "allowed_tools": {"mode": "auto", "tools": [weather_tool()]}})
            }),
            "tool_choice",
        ),
        (
            with(&|r| {
                r.as_object_mut().unwrap().remove("tools");
                r["tool_choice"] = json!("required");
            }),
            "tool_choice",
        ),
        (
            with(&|r| r["tools"] = json!(vec![time_tool(); 129])),
            "tools",
        ),
        (
            with(&|r| r["messages"] = json!([{"role": "tool", "content": "18C"}])),
            "messages[0].tool_call_id",
        ),
        (
            with(&|r| {
                r["messages"] = json!([{"role": "user", "content": "Hi", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}])
            }),
            "messages[0].tool_calls",
        ),
        (
            with(&|r| {
                r["messages"] = json!([{"role": "assistant", "content": null, "tool_calls": [
                    {"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}])
            }),
            "messages[0].tool_calls[0].id",
        ),
        (
            with(&|r| r["functions"] = json!([{"name": "get_weather"}])),
            "functions",
        ),
    ];
    assert_refused_before_any_call(&app, &token, &mock, cases).await;
}

#[tokio::test]
async fn the_local_model_answers_in_text_and_refuses_to_be_forced_to_call() {
    let app = spawn_app().await;
    let token = signed_up(&app, "ada@example.com").await;

    let offered = post(
        &app,
        &token,
        "/v1/chat/completions",
        &ask_with_tools("local/extractive"),
    )
    .await;
    assert_eq!(offered.status(), 200);
    let body: Value = offered.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"]["content"].is_string());

    let mut forced = ask_with_tools("local/extractive");
    forced["tool_choice"] = json!("required");
    assert_the_local_model_refuses(&app, &token, &forced).await;
}

/// Anthropic's Messages API calling `get_weather`, whole or streamed.
async fn anthropic_calling(seen: Seen) -> String {
    let router = Router::new().route(
        "/v1/messages",
        route_post(move |axum::Json(body): axum::Json<Value>| {
            seen.lock().unwrap().push(body.clone());
            async move {
                if body["stream"] != true {
                    return axum::response::IntoResponse::into_response(axum::Json(json!({
                        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
                        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                            "input": {"city": "Paris"}}],
                        "stop_reason": "tool_use", "usage": {"input_tokens": 60, "output_tokens": 15}
                    })));
                }
                let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
                let text = [
                    event("message_start", json!({"type": "message_start", "message": {"id": "msg_1",
                        "type": "message", "role": "assistant", "content": [], "model": "claude-x",
                        "usage": {"input_tokens": 60, "output_tokens": 1}}})),
                    event("content_block_start", json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}})),
                    event("content_block_delta", json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Paris\"}"}})),
                    event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                    event("message_delta", json!({"type": "message_delta",
                        "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 15}})),
                    event("message_stop", json!({"type": "message_stop"})),
                ]
                .concat();
                body_of("text/event-stream", text)
            }
        }),
    );
    serve(router).await
}

#[tokio::test]
async fn claude_calls_tools_through_the_openai_compatible_route() {
    let seen = Seen::default();
    let base_url = anthropic_calling(seen.clone()).await;
    let (app, token) = app_with_native("ANTHROPIC_BASE_URL", &base_url).await;

    let mut request = ask_with_tools("claude-3-5-haiku");
    request["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let body: Value = post(&app, &token, "/v1/chat/completions", &request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"],
        json!([{"id": "toolu_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}])
    );
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(
        sent["tools"][0],
        json!({"name": "get_weather", "description": "Current weather in a city",
            "input_schema": weather_tool()["function"]["parameters"]})
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "get_weather"})
    );

    request["stream"] = json!(true);
    let events = sse_data(post(&app, &token, "/v1/chat/completions", &request).await).await;
    let arguments: String = events
        .iter()
        .filter_map(|event| {
            event["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .collect();
    assert_eq!(arguments, "{\"city\": \"Paris\"}");
    assert!(
        events
            .iter()
            .any(|event| event["choices"][0]["finish_reason"] == "tool_calls")
    );

    post(
        &app,
        &token,
        "/v1/chat/completions",
        &results_sent_back("claude-3-5-haiku"),
    )
    .await;
    let sent = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        sent["messages"][1]["content"][0],
        json!({"type": "tool_use", "id": "call_weather", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(
        sent["messages"][2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_weather", "content": "18C, sunny"},
            {"type": "tool_result", "tool_use_id": "call_time", "content": "14:05"}]})
    );
}

#[tokio::test]
async fn ollama_models_call_tools_through_the_openai_compatible_route() {
    let seen = Seen::default();
    let recorded = seen.clone();
    let router = Router::new().route(
        "/api/chat",
        route_post(move |axum::Json(body): axum::Json<Value>| {
            recorded.lock().unwrap().push(body.clone());
            async move {
                axum::Json(
                    json!({"model": "llama3.2", "done": true, "done_reason": "stop",
                    "message": {"role": "assistant", "content": "", "tool_calls": [
                        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
                    "prompt_eval_count": 40, "eval_count": 9}),
                )
            }
        }),
    );
    let base_url = serve(router).await;
    let (app, token) = app_with_native("OLLAMA_BASE_URL", &base_url).await;

    let body: Value = post(
        &app,
        &token,
        "/v1/chat/completions",
        &ask_with_tools("ollama/llama3.2"),
    )
    .await
    .json()
    .await
    .unwrap();

    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert!(
        call["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("call_"))
    );
    assert_eq!(body["usage"]["prompt_tokens"], 40);
    let sent = seen.lock().unwrap()[0].clone();
    assert_eq!(sent["tools"][0], weather_tool());

    post(
        &app,
        &token,
        "/v1/chat/completions",
        &results_sent_back("ollama/llama3.2"),
    )
    .await;
    let sent = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "content": "18C, sunny", "tool_name": "get_weather"})
    );
}
