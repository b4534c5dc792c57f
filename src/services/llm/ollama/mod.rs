//! The Ollama provider over its native API: `/api/chat` (whole, or NDJSON-streamed, tool
//! calls included), `/api/tags` for the model list and `/api/embed` for embeddings.

mod request;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::request::ChatBody;

use super::framing::{Frame, decode_events, lines};
use super::http::{Endpoint, LlmHttp, Upstream, safe_message};
use super::tools::{self, written};
use super::{
    Completion, CompletionRequest, EmbeddingOutput, EventStream, FinishReason, LlmProvider,
    ModelInfo, ProviderError, RemoteEmbedder, StreamEvent, ToolCall, ToolCallDelta, Usage,
};

const PROVIDER: &str = "ollama";

pub struct OllamaProvider {
    http: LlmHttp,
    base_url: String,
    chat: Endpoint,
    embed: Endpoint,
}

impl OllamaProvider {
    pub fn new(http: LlmHttp, base_url: &str) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            http,
            chat: Endpoint::new(format!("{base_url}/api/chat")),
            embed: Endpoint::new(format!("{base_url}/api/embed")),
            base_url,
        }
    }

    async fn post_chat(
        &self,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<Upstream, ProviderError> {
        let builder = self
            .chat
            .post(self.http.client())
            .json(&ChatBody::new(req, stream));
        self.http.send(PROVIDER, builder).await
    }
}

/// The whole answer, and also each NDJSON line of a streamed one.
#[derive(Deserialize)]
struct ChatLine {
    model: Option<String>,
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    prompt_eval_count: Option<u32>,
    eval_count: Option<u32>,
    done_reason: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

/// A call as Ollama reports it: whole, with its arguments as a JSON object.
#[derive(Deserialize)]
struct WireToolCall {
    /// Given by recent Ollama versions; made up otherwise.
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

impl WireToolCall {
    fn into_call(self) -> ToolCall {
        let arguments = match self.function.arguments {
            Value::Null => "{}".to_owned(),
            Value::String(text) => text,
            value => value.to_string(),
        };
        ToolCall {
            id: self.id.unwrap_or_else(tools::new_call_id),
            name: self.function.name,
            arguments,
        }
    }
}

impl ChatLine {
    /// Ollama reports usage as `prompt_eval_count` (prompt) and `eval_count` (answer); the
    /// prompt count is absent when the prompt was served from its cache.
    fn usage(&self) -> Option<Usage> {
        self.eval_count
            .map(|completion| Usage::new(self.prompt_eval_count.unwrap_or(0), completion))
    }
}

#[derive(Deserialize)]
struct Tags {
    models: Vec<Tag>,
}

#[derive(Deserialize)]
struct Tag {
    name: String,
}

#[derive(Serialize)]
struct EmbedBody<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbedResponse {
    embeddings: Vec<Vec<f32>>,
    prompt_eval_count: Option<u32>,
}

/// An error Ollama reports in its body (a stream line or a whole answer).
fn in_stream_error(message: &str) -> ProviderError {
    ProviderError::Upstream {
        provider: PROVIDER,
        status: 200,
        message: safe_message(message),
    }
}

/// What a stream has said so far that matters at its end.
#[derive(Default)]
struct StreamState {
    /// Tool calls received, which also number the next one.
    calls: u32,
    /// At most one call is passed on (`parallel_tool_calls: false`, which Ollama lacks).
    single_call: bool,
}

/// Whether the request allows only one call per answer: Ollama has no such switch, so ragd
/// keeps the first call and drops the others.
fn single_call(req: &CompletionRequest) -> bool {
    req.options
        .tools
        .as_ref()
        .is_some_and(|tools| tools.parallel_calls == Some(false))
}

fn decode_line(line: &str, state: &mut StreamState) -> Result<Frame, ProviderError> {
    if line.trim().is_empty() {
        return Ok(Frame::Ignore);
    }
    let line: ChatLine = serde_json::from_str(line).map_err(|error| ProviderError::Protocol {
        provider: PROVIDER,
        message: format!("invalid stream line: {error}"),
    })?;
    if let Some(error) = line.error {
        return Err(in_stream_error(&error));
    }
    let usage = line.usage();
    let (content, calls) = line.message.map_or((String::new(), Vec::new()), |message| {
        (message.content, message.tool_calls)
    });
    if calls.is_empty() && !line.done {
        // The common line: a piece of the answer's text.
        return Ok(if content.is_empty() {
            Frame::Ignore
        } else {
            Frame::Token(content)
        });
    }
    let mut events = Vec::new();
    if !content.is_empty() {
        events.push(StreamEvent::Token(content));
    }
    for call in calls {
        if state.single_call && state.calls > 0 {
            break;
        }
        events.push(StreamEvent::ToolCall(ToolCallDelta::whole(
            state.calls,
            call.into_call(),
        )));
        state.calls += 1;
    }
    if line.done {
        let finish =
            FinishReason::from_provider(line.done_reason.as_deref()).with_calls(state.calls > 0);
        events.push(StreamEvent::Done { usage, finish });
    }
    Ok(if events.is_empty() {
        Frame::Ignore
    } else {
        Frame::Events(events)
    })
}

#[async_trait]
impl LlmProvider for OllamaProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let answer: ChatLine = self.post_chat(req, false).await?.json().await?;
        if let Some(error) = answer.error {
            return Err(in_stream_error(&error));
        }
        let usage = answer.usage();
        let (text, calls) = answer
            .message
            .map_or((String::new(), Vec::new()), |message| {
                (message.content, message.tool_calls)
            });
        let mut tool_calls: Vec<ToolCall> =
            calls.into_iter().map(WireToolCall::into_call).collect();
        if single_call(req) {
            tool_calls.truncate(1);
        }
        let finish = FinishReason::from_provider(answer.done_reason.as_deref())
            .with_calls(!tool_calls.is_empty());
        Ok(Completion {
            usage: usage.unwrap_or_else(|| req.estimate_usage(&written(&text, &tool_calls))),
            text,
            tool_calls,
            refusal: None,
            model: answer.model.unwrap_or_else(|| req.model.clone()),
            finish,
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError> {
        let upstream = self.post_chat(req, true).await?;
        let lines = lines(PROVIDER, upstream.into_chunks());
        let mut state = StreamState {
            single_call: single_call(req),
            ..StreamState::default()
        };
        Ok(decode_events(PROVIDER, lines, move |line| {
            decode_line(&line, &mut state)
        }))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let builder = self
            .http
            .client()
            .get(format!("{}/api/tags", self.base_url));
        let tags: Tags = self.http.send(PROVIDER, builder).await?.json().await?;
        Ok(tags
            .models
            .into_iter()
            .map(|tag| ModelInfo {
                id: format!("{PROVIDER}/{}", tag.name),
                owned_by: PROVIDER.to_owned(),
            })
            .collect())
    }
}

#[async_trait]
impl RemoteEmbedder for OllamaProvider {
    async fn embed(
        &self,
        model: &str,
        inputs: &[String],
    ) -> Result<EmbeddingOutput, ProviderError> {
        let builder = self.embed.post(self.http.client()).json(&EmbedBody {
            model,
            input: inputs,
        });
        let response: EmbedResponse = self.http.send(PROVIDER, builder).await?.json().await?;
        if response.embeddings.len() != inputs.len() {
            return Err(ProviderError::Protocol {
                provider: PROVIDER,
                message: format!(
                    "{} embeddings for {} inputs",
                    response.embeddings.len(),
                    inputs.len()
                ),
            });
        }
        Ok(EmbeddingOutput {
            vectors: response.embeddings,
            prompt_tokens: response.prompt_eval_count.unwrap_or(0),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::Json;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use bytes::Bytes;
    use serde_json::{Value, json};

    use super::*;
    use crate::services::llm::StreamEvent;
    use crate::services::llm::test_support::*;

    fn line(content: &str) -> String {
        json!({"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": content}, "done": false})
        .to_string()
    }

    fn done_line() -> String {
        json!({"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop",
            "total_duration": 1000, "prompt_eval_count": 26, "eval_count": 2})
        .to_string()
    }

    async fn mock_chat(
        answer: impl Fn() -> Response + Clone + Send + Sync + 'static,
    ) -> (OllamaProvider, Captured) {
        let captured = Captured::default();
        let seen = captured.clone();
        let router = Router::new().route(
            "/api/chat",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                let response = answer();
                async move { response }
            }),
        );
        (OllamaProvider::new(http(), &serve(router).await), captured)
    }

    fn tool_call_line(done: bool) -> String {
        json!({"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {}}}]},
            "done": done, "done_reason": "stop", "prompt_eval_count": 40, "eval_count": 9})
        .to_string()
    }

    #[tokio::test]
    async fn tool_calls_come_back_with_ids_text_arguments_and_their_finish_reason() {
        let (provider, _) = mock_chat(|| {
            Json(serde_json::from_str::<Value>(&tool_call_line(true)).unwrap()).into_response()
        })
        .await;

        let completion = provider
            .complete(&user_request("llama3.2", "Weather?"))
            .await
            .unwrap();

        assert_eq!(completion.finish, FinishReason::ToolCalls);
        let calls: Vec<_> = completion
            .tool_calls
            .iter()
            .map(|call| (call.name.as_str(), call.arguments.as_str()))
            .collect();
        assert_eq!(
            calls,
            [("get_weather", r#"{"city":"Paris"}"#), ("get_time", "{}")]
        );
        assert!(
            completion
                .tool_calls
                .iter()
                .all(|call| call.id.starts_with("call_"))
        );
        assert_ne!(completion.tool_calls[0].id, completion.tool_calls[1].id);
    }

    #[tokio::test]
    async fn without_parallel_calls_only_the_first_call_is_passed_on() {
        let (provider, _) = mock_chat(|| {
            Json(serde_json::from_str::<Value>(&tool_call_line(true)).unwrap()).into_response()
        })
        .await;
        let mut request = user_request("llama3.2", "Weather?");
        request.options.tools = Some(std::sync::Arc::new(crate::services::llm::Tools {
            definitions: vec![tool("get_weather"), tool("get_time")],
            parallel_calls: Some(false),
            ..Default::default()
        }));

        let whole = provider.complete(&request).await.unwrap();
        let names: Vec<_> = whole
            .tool_calls
            .iter()
            .map(|call| call.name.as_str())
            .collect();
        assert_eq!(names, ["get_weather"]);

        let (provider, _) = mock_chat(|| ndjson(vec![tool_call_line(false), done_line()])).await;
        let events = streamed_answer(&provider, &request).await;
        let calls = events
            .iter()
            .filter(|event| matches!(event, StreamEvent::ToolCall(_)))
            .count();
        assert_eq!(calls, 1, "{events:?}");
    }

    #[tokio::test]
    async fn streamed_tool_calls_arrive_whole_and_numbered() {
        let (provider, _) = mock_chat(|| ndjson(vec![tool_call_line(false), done_line()])).await;

        let events = streamed(&provider, "llama3.2").await;

        let [first, second, done] = events.as_slice() else {
            panic!("{events:?}")
        };
        let StreamEvent::ToolCall(first) = first else {
            panic!("{first:?}")
        };
        let StreamEvent::ToolCall(second) = second else {
            panic!("{second:?}")
        };
        assert_eq!(
            (first.index, first.name.as_deref(), first.arguments.as_str()),
            (0, Some("get_weather"), r#"{"city":"Paris"}"#)
        );
        assert_eq!(
            (second.index, second.name.as_deref()),
            (1, Some("get_time"))
        );
        assert!(first.id.is_some() && second.id.is_some());
        assert_eq!(
            *done,
            StreamEvent::Done {
                usage: Some(Usage::new(26, 2)),
                finish: FinishReason::ToolCalls
            }
        );
    }

    #[tokio::test]
    async fn complete_uses_the_native_chat_api_and_maps_eval_counts_to_usage() {
        let (provider, captured) = mock_chat(|| {
            let mut answer: Value = serde_json::from_str(&done_line()).unwrap();
            answer["message"]["content"] = json!("Hi there");
            Json(answer).into_response()
        })
        .await;

        let completion = provider
            .complete(&user_request("llama3.2", "Hi"))
            .await
            .unwrap();

        assert_eq!(completion.text, "Hi there");
        assert_eq!(completion.usage, Usage::new(26, 2));
        let (_, body) = captured.last();
        assert_eq!(body["model"], "llama3.2");
        assert_eq!(body["stream"], false);
        assert_eq!(body["options"]["num_predict"], 64);
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "Hi"})
        );
    }

    #[tokio::test]
    async fn stream_reads_ndjson_until_the_done_line() {
        let (provider, captured) =
            mock_chat(|| ndjson(vec![line("Hel"), line("lo"), done_line()])).await;

        let events = streamed(&provider, "llama3.2").await;

        assert_eq!(events, hello_events(Usage::new(26, 2)));
        assert_eq!(captured.last().1["stream"], true);
    }

    #[tokio::test]
    async fn a_stream_cut_before_the_done_line_ends_with_an_error() {
        let (provider, _) =
            mock_chat(|| cut_after("application/x-ndjson", vec![format!("{}\n", line("Hel"))]))
                .await;

        let events = stream_results(&provider, "llama3.2").await;

        assert!(
            matches!(events.first(), Some(Ok(StreamEvent::Token(_)))),
            "{events:?}"
        );
        assert!(
            matches!(
                events.last(),
                Some(Err(ProviderError::StreamCut { provider: "ollama" }))
            ),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn an_error_line_inside_the_stream_is_an_upstream_error() {
        let (provider, _) = mock_chat(|| {
            ndjson(vec![
                line("Hel"),
                json!({"error": "model runner crashed"}).to_string(),
            ])
        })
        .await;

        let events = stream_results(&provider, "llama3.2").await;

        assert!(
            matches!(events.last(), Some(Err(ProviderError::Upstream { message, .. })) if message == "model runner crashed"),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn an_unknown_model_is_reported_with_ollamas_message() {
        let (provider, captured) = mock_chat(|| {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "model \"nope\" not found, try pulling it first"})),
            )
                .into_response()
        })
        .await;

        let error = provider
            .complete(&user_request("nope", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(&error, ProviderError::Upstream { status: 404, message, .. } if message.contains("not found")),
            "{error:?}"
        );
        assert_eq!(captured.count(), 1, "a 404 is not retried");
    }

    #[tokio::test]
    async fn tags_become_routable_model_names() {
        let router = Router::new().route(
            "/api/tags",
            get(|| async { Json(json!({"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 1}]})) }),
        );
        let provider = OllamaProvider::new(http(), &serve(router).await);

        let models = provider.list_models().await.unwrap();

        assert_eq!(
            models,
            [ModelInfo {
                id: "ollama/llama3.2:latest".into(),
                owned_by: "ollama".into()
            }]
        );
    }

    #[tokio::test]
    async fn embed_returns_one_vector_per_input() {
        let captured = Captured::default();
        let seen = captured.clone();
        let router = Router::new().route(
            "/api/embed",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                async { Json(json!({"model": "nomic-embed-text", "embeddings": [[0.1, 0.2], [0.3, 0.4]], "prompt_eval_count": 4})) }
            }),
        );
        let provider = OllamaProvider::new(http(), &serve(router).await);
        let inputs = vec!["a".to_owned(), "b".to_owned()];

        let output = provider.embed("nomic-embed-text", &inputs).await.unwrap();

        assert_eq!(output.vectors, vec![vec![0.1, 0.2], vec![0.3, 0.4]]);
        assert_eq!(output.prompt_tokens, 4);
        assert_eq!(
            captured.last().1,
            json!({"model": "nomic-embed-text", "input": ["a", "b"]})
        );
    }

    #[tokio::test]
    async fn embed_rejects_a_count_mismatch() {
        let router = Router::new().route(
            "/api/embed",
            post(|| async { Json(json!({"embeddings": [[0.1]]})) }),
        );
        let provider = OllamaProvider::new(http(), &serve(router).await);

        let error = provider
            .embed("m", &["a".to_owned(), "b".to_owned()])
            .await
            .unwrap_err();

        assert!(matches!(error, ProviderError::Protocol { .. }), "{error:?}");
    }
}
