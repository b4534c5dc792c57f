//! The OpenAI-compatible provider: chat completions (whole and SSE-streamed), the model
//! list and embeddings, against any server that speaks OpenAI's API.

use async_trait::async_trait;
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};

use super::framing::{Frame, decode_events_to_end, sse_events};
use super::http::{Endpoint, LlmHttp, Upstream, safe_message};
use super::{
    ChatMessage, Completion, CompletionRequest, EmbeddingOutput, EventStream, FinishReason,
    LlmProvider, ModelInfo, ProviderError, RemoteEmbedder, Usage, tokens,
};
use crate::secret::Secret;

const PROVIDER: &str = "openai";
/// The official API, which wants `max_completion_tokens` (its reasoning models reject
/// `max_tokens`), while other compatible servers often know only `max_tokens`.
const OFFICIAL_HOST: &str = "api.openai.com";

pub struct OpenAiProvider {
    http: LlmHttp,
    base_url: String,
    chat: Endpoint,
    embeddings: Endpoint,
    api_key: Option<Secret>,
    official: bool,
}

impl OpenAiProvider {
    pub fn new(http: LlmHttp, base_url: &str, api_key: Option<Secret>) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self {
            official: base_url.contains(OFFICIAL_HOST),
            chat: Endpoint::new(format!("{base_url}/chat/completions")),
            embeddings: Endpoint::new(format!("{base_url}/embeddings")),
            http,
            base_url,
            api_key,
        }
    }

    fn request(&self, builder: RequestBuilder) -> RequestBuilder {
        match &self.api_key {
            Some(key) => builder.bearer_auth(key.expose()),
            None => builder,
        }
    }

    fn chat_body<'a>(&self, req: &'a CompletionRequest, stream: bool) -> ChatBody<'a> {
        let (max_tokens, max_completion_tokens) = if self.official {
            (None, Some(req.max_tokens))
        } else {
            (Some(req.max_tokens), None)
        };
        ChatBody {
            model: &req.model,
            messages: &req.messages,
            temperature: req.temperature,
            max_tokens,
            max_completion_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }

    async fn post_chat(
        &self,
        req: &CompletionRequest,
        stream: bool,
    ) -> Result<Upstream, ProviderError> {
        let builder = self
            .request(self.chat.post(self.http.client()))
            .json(&self.chat_body(req, stream));
        self.http.send(PROVIDER, builder).await
    }
}

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

impl From<WireUsage> for Usage {
    fn from(wire: WireUsage) -> Self {
        Usage::new(wire.prompt_tokens, wire.completion_tokens)
    }
}

#[derive(Deserialize)]
struct ChatResponse {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

/// One chunk, read as leniently as the servers that speak OpenAI's API write them: `choices`
/// may be missing or `null` (a usage-only chunk), and so may a choice's `delta` (a last
/// chunk carrying only its `finish_reason`).
#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<WireUsage>,
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
}

/// An error some compatible servers send inside a stream that already answered 200.
#[derive(Deserialize)]
struct WireError {
    message: Option<String>,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<WireModel>,
}

#[derive(Deserialize)]
struct WireModel {
    id: String,
    owned_by: Option<String>,
}

#[derive(Serialize)]
struct EmbeddingBody<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct EmbeddingResponse {
    data: Vec<EmbeddingItem>,
    usage: Option<EmbeddingUsage>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct EmbeddingUsage {
    prompt_tokens: u32,
}

fn protocol(message: impl Into<String>) -> ProviderError {
    ProviderError::Protocol {
        provider: PROVIDER,
        message: message.into(),
    }
}

/// What a stream has reported so far that only matters at its end.
#[derive(Default)]
struct StreamEnd {
    usage: Option<Usage>,
    finish: FinishReason,
    /// A choice said why it finished: the answer is whole even if `[DONE]` never comes (some
    /// compatible servers just close the stream).
    finished: bool,
}

/// Decodes one SSE `data:` payload of a chat completion stream; `None` when the stream ended.
fn decode_chunk(data: Option<&str>, end: &mut StreamEnd) -> Result<Frame, ProviderError> {
    let Some(data) = data else {
        return if end.finished {
            Ok(Frame::Done(end.usage.take(), end.finish))
        } else {
            Err(ProviderError::StreamCut { provider: PROVIDER })
        };
    };
    if data.trim() == "[DONE]" {
        return Ok(Frame::Done(end.usage.take(), end.finish));
    }
    let chunk: ChatChunk = serde_json::from_str(data)
        .map_err(|error| protocol(format!("invalid stream chunk: {error}")))?;
    if let Some(error) = chunk.error {
        return Err(ProviderError::Upstream {
            provider: PROVIDER,
            status: 200,
            message: error.message.map_or_else(
                || "error inside the stream".to_owned(),
                |message| safe_message(&message),
            ),
        });
    }
    if let Some(reported) = chunk.usage {
        end.usage = Some(reported.into());
    }
    let mut text = String::new();
    for choice in chunk.choices.into_iter().flatten() {
        if let Some(reason) = choice.finish_reason.as_deref() {
            end.finish = FinishReason::from_provider(Some(reason));
            end.finished = true;
        }
        match choice.delta.and_then(|delta| delta.content) {
            Some(content) if text.is_empty() => text = content,
            Some(content) => text.push_str(&content),
            None => {}
        }
    }
    Ok(if text.is_empty() {
        Frame::Ignore
    } else {
        Frame::Token(text)
    })
}

#[async_trait]
impl LlmProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    async fn complete(&self, req: &CompletionRequest) -> Result<Completion, ProviderError> {
        let response: ChatResponse = self.post_chat(req, false).await?.json().await?;
        let choice = response
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| protocol("the answer has no choices"))?;
        let finish = FinishReason::from_provider(choice.finish_reason.as_deref());
        let text = choice.message.content.unwrap_or_default();
        let usage = match response.usage {
            Some(usage) => usage.into(),
            None => tokens::estimate_usage(&req.model, &req.messages, &text),
        };
        Ok(Completion {
            text,
            usage,
            model: response.model.unwrap_or_else(|| req.model.clone()),
            finish,
        })
    }

    async fn stream(&self, req: &CompletionRequest) -> Result<EventStream, ProviderError> {
        let upstream = self.post_chat(req, true).await?;
        let events = sse_events(PROVIDER, upstream.into_chunks());
        let mut end = StreamEnd::default();
        Ok(decode_events_to_end(events, move |event| {
            decode_chunk(event.as_ref().map(|event| event.data.as_str()), &mut end)
        }))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let url = format!("{}/models", self.base_url);
        let builder = self.request(self.http.client().get(url));
        let list: ModelList = self.http.send(PROVIDER, builder).await?.json().await?;
        Ok(list
            .data
            .into_iter()
            .map(|model| ModelInfo {
                id: model.id,
                owned_by: model.owned_by.unwrap_or_else(|| PROVIDER.to_owned()),
            })
            .collect())
    }
}

#[async_trait]
impl RemoteEmbedder for OpenAiProvider {
    async fn embed(
        &self,
        model: &str,
        inputs: &[String],
    ) -> Result<EmbeddingOutput, ProviderError> {
        let body = EmbeddingBody {
            model,
            input: inputs,
            encoding_format: "float",
        };
        let builder = self
            .request(self.embeddings.post(self.http.client()))
            .json(&body);
        let response: EmbeddingResponse = self.http.send(PROVIDER, builder).await?.json().await?;
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
        for item in response.data {
            let slot = vectors
                .get_mut(item.index)
                .ok_or_else(|| protocol(format!("embedding index {} out of range", item.index)))?;
            *slot = Some(item.embedding);
        }
        let vectors = vectors
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| protocol("an input got no embedding"))?;
        let prompt_tokens = match response.usage {
            Some(usage) => usage.prompt_tokens,
            None => inputs
                .iter()
                .map(|input| tokens::count_text(model, input))
                .fold(0, u32::saturating_add),
        };
        Ok(EmbeddingOutput {
            vectors,
            prompt_tokens,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use axum::Json;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use bytes::Bytes;
    use futures::StreamExt;
    use serde_json::json;
    use tokio::sync::oneshot;

    use super::*;
    use crate::services::llm::StreamEvent;
    use crate::services::llm::test_support::*;

    fn provider(base_url: &str) -> OpenAiProvider {
        OpenAiProvider::new(http(), base_url, Some(Secret::new("sk-test")))
    }

    fn chunk(content: &str) -> String {
        data(
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]}),
        )
    }

    fn usage_chunk() -> String {
        data(
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14}}),
        )
    }

    async fn mock_chat(
        answer: impl Fn() -> Response + Clone + Send + Sync + 'static,
    ) -> (String, Captured) {
        let captured = Captured::default();
        let seen = captured.clone();
        let router = Router::new().route(
            "/v1/chat/completions",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                let response = answer();
                async move { response }
            }),
        );
        (format!("{}/v1", serve(router).await), captured)
    }

    #[tokio::test]
    async fn complete_sends_the_openai_request_and_maps_answer_and_usage() {
        let (base_url, captured) = mock_chat(|| {
            Json(json!({"id": "x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}))
            .into_response()
        })
        .await;

        let completion = provider(&base_url)
            .complete(&user_request("gpt-4o-mini", "Hi"))
            .await
            .unwrap();

        assert_eq!(completion.text, "Hello!");
        assert_eq!(completion.usage, Usage::new(9, 3));
        assert_eq!(completion.model, "gpt-4o-mini-2024");
        let (headers, body) = captured.last();
        assert_eq!(headers["authorization"], "Bearer sk-test");
        assert_eq!(body["model"], "gpt-4o-mini");
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(
            body["messages"][1],
            json!({"role": "user", "content": "Hi"})
        );
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["stream"], false);
        assert!(body.get("stream_options").is_none());
    }

    #[tokio::test]
    async fn stream_yields_tokens_then_done_with_the_reported_usage() {
        let (base_url, captured) = mock_chat(|| {
            let role = data(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]}));
            sse(vec![role, chunk("Hel"), chunk("lo"), usage_chunk(), "data: [DONE]\n\n".into()])
        })
        .await;

        let events = streamed(&provider(&base_url), "gpt-4o-mini").await;

        assert_eq!(events, hello_events(Usage::new(12, 2)));
        let (_, body) = captured.last();
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
    }

    #[tokio::test]
    async fn an_answer_cut_at_max_tokens_says_so_whole_and_streamed() {
        let (base_url, _) = mock_chat(|| {
            Json(json!({"model": "m", "choices": [{"index": 0, "message": {"content": "Hel"}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}))
            .into_response()
        })
        .await;
        let completion = provider(&base_url)
            .complete(&user_request("gpt-4o-mini", "Hi"))
            .await
            .unwrap();
        assert_eq!(completion.finish, FinishReason::Length);

        let (base_url, _) = mock_chat(|| {
            let last = data(json!({"object": "chat.completion.chunk", "model": "m",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}));
            sse(vec![
                chunk("Hel"),
                last,
                usage_chunk(),
                "data: [DONE]\n\n".into(),
            ])
        })
        .await;
        let events: Vec<_> = provider(&base_url)
            .stream(&user_request("gpt-4o-mini", "Hi"))
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done {
                usage: Some(Usage::new(12, 2)),
                finish: FinishReason::Length,
            })
        );
    }

    #[tokio::test]
    async fn upstream_500_is_retried_then_reported_as_an_upstream_error() {
        let (base_url, captured) = mock_chat(|| {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": {"message": "The server had an error", "type": "server_error"}})))
                .into_response()
        })
        .await;

        let error = provider(&base_url)
            .complete(&user_request("gpt-4o-mini", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(&error, ProviderError::Upstream { provider: "openai", status: 500, message } if message == "The server had an error"),
            "{error:?}"
        );
        assert_eq!(captured.count(), 1 + fast_retries().max_retries as usize);
    }

    #[tokio::test]
    async fn a_429_with_retry_after_is_waited_out_and_retried() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let (base_url, _) = mock_chat(move || {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "1")],
                    Json(json!({"error": {"message": "slow down"}})),
                )
                    .into_response()
            } else {
                Json(
                    json!({"model": "m", "choices": [{"message": {"content": "ok"}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
                )
                .into_response()
            }
        })
        .await;

        let completion = provider(&base_url)
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap();

        assert_eq!(completion.text, "ok");
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_fails_fast_as_rate_limited() {
        let (base_url, captured) = mock_chat(|| {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "3600")], "").into_response()
        })
        .await;

        let error = provider(&base_url)
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(error, ProviderError::RateLimited { retry_after: Some(wait), .. } if wait == Duration::from_secs(3600))
        );
        assert_eq!(captured.count(), 1);
    }

    #[tokio::test]
    async fn malformed_json_is_a_protocol_error() {
        let (base_url, _) = mock_chat(|| "{\"choices\": [".into_response()).await;

        let error = provider(&base_url)
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(
                error,
                ProviderError::Protocol {
                    provider: "openai",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_hanging_provider_times_out() {
        let router = Router::new().route("/v1/chat/completions", post(hang));
        let base_url = format!("{}/v1", serve(router).await);
        let http = http_with_timeouts(Duration::from_millis(200), Duration::from_millis(200));
        let provider = OpenAiProvider::new(http, &base_url, None);

        let error = provider
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(error, ProviderError::Timeout { provider: "openai" }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_error_sent_inside_the_stream_is_summarized_without_credentials() {
        let (base_url, _) = mock_chat(|| {
            let error =
                json!({"error": {"message": "bad key sk-proj-SUPERSECRET0123456789abcdef"}});
            sse(vec![chunk("Hel"), data(error)])
        })
        .await;

        let events = stream_results(&provider(&base_url), "m").await;

        match events.last() {
            Some(Err(ProviderError::Upstream { message, .. })) => {
                assert_eq!(message, "bad key [redacted]");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_with_the_key() {
        let elsewhere = Captured::default();
        let seen = elsewhere.clone();
        let target = serve(Router::new().route(
            "/v1/chat/completions",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                async { StatusCode::OK }
            }),
        ))
        .await;
        let (base_url, _) = mock_chat(move || {
            let location = format!("{target}/v1/chat/completions");
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
                .into_response()
        })
        .await;

        let error = provider(&base_url)
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(error, ProviderError::Upstream { status: 307, .. }),
            "{error:?}"
        );
        assert_eq!(elsewhere.count(), 0);
    }

    #[tokio::test]
    async fn a_stream_cut_mid_way_ends_with_an_error() {
        let (base_url, _) =
            mock_chat(|| cut_after("text/event-stream", vec![chunk("Hel"), chunk("lo")])).await;

        let events = stream_results(&provider(&base_url), "m").await;

        assert_eq!(events.len(), 3, "{events:?}");
        assert!(matches!(events[0], Ok(StreamEvent::Token(_))));
        assert!(
            matches!(
                events[2],
                Err(ProviderError::StreamCut { provider: "openai" })
            ),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn chunks_without_choices_or_delta_are_read_as_compatible_servers_write_them() {
        let (base_url, _) = mock_chat(|| {
            sse(vec![
                chunk("Hel"),
                data(json!({"choices": [{"index": 0, "finish_reason": "stop"}]})),
                data(
                    json!({"choices": null, "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
                ),
                "data: [DONE]\n\n".to_owned(),
            ])
        })
        .await;

        let events = streamed(&provider(&base_url), "m").await;

        assert_eq!(
            events,
            [
                StreamEvent::Token("Hel".into()),
                StreamEvent::Done {
                    usage: Some(Usage::new(3, 1)),
                    finish: FinishReason::Stop
                }
            ]
        );
    }

    #[tokio::test]
    async fn a_stream_that_finished_is_whole_without_done() {
        let finished =
            data(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}));
        let (base_url, _) = mock_chat(move || sse(vec![chunk("Hel"), finished.clone()])).await;

        let events = streamed(&provider(&base_url), "m").await;

        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done {
                usage: None,
                finish: FinishReason::Length
            })
        );
    }

    #[tokio::test]
    async fn a_stream_closed_without_done_is_cut() {
        let (base_url, _) = mock_chat(|| sse(vec![chunk("Hel")])).await;

        let events = stream_results(&provider(&base_url), "m").await;

        assert!(
            matches!(events.last(), Some(Err(ProviderError::StreamCut { .. }))),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn a_stalled_stream_hits_the_idle_timeout() {
        let (base_url, _) =
            mock_chat(|| stall_after("text/event-stream", vec![chunk("Hel")])).await;
        let http = http_with_timeouts(Duration::from_secs(30), Duration::from_millis(200));
        let provider = OpenAiProvider::new(http, &base_url, None);

        let events = stream_results(&provider, "m").await;

        assert!(
            matches!(events.last(), Some(Err(ProviderError::Timeout { .. }))),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn the_idle_limit_runs_from_the_last_chunk_not_from_the_start() {
        // Six chunks 100 ms apart: 0.5 s in all, each gap well inside the 300 ms limit.
        let mut parts: Vec<String> = ["a", "b", "c", "d"].map(chunk).into();
        parts.extend([usage_chunk(), "data: [DONE]\n\n".to_owned()]);
        let (base_url, _) = mock_chat(move || {
            paced(
                "text/event-stream",
                parts.clone(),
                Duration::from_millis(100),
            )
        })
        .await;
        let http = http_with_timeouts(Duration::from_secs(30), Duration::from_millis(300));
        let provider = OpenAiProvider::new(http, &base_url, None);

        let events = stream_results(&provider, "m").await;

        assert_eq!(events.len(), 5, "{events:?}");
        assert!(
            matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn dropping_the_stream_closes_the_upstream_connection() {
        let (dropped_tx, dropped_rx) = oneshot::channel();
        let dropped_tx = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
        let (base_url, _) = mock_chat(move || {
            let sender = dropped_tx.lock().unwrap().take().unwrap();
            hold_open(
                "text/event-stream",
                vec![chunk("Hel")],
                ": keep-alive\n\n",
                sender,
            )
        })
        .await;
        let mut stream = provider(&base_url)
            .stream(&user_request("m", "Hi"))
            .await
            .unwrap();
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            StreamEvent::Token("Hel".into())
        );

        drop(stream);

        tokio::time::timeout(Duration::from_secs(1), dropped_rx)
            .await
            .expect("the mock still streams to a client that went away")
            .unwrap();
    }

    #[tokio::test]
    async fn embeddings_come_back_in_input_order() {
        let captured = Captured::default();
        let seen = captured.clone();
        let router = Router::new().route(
            "/v1/embeddings",
            post(move |headers: HeaderMap, body: Bytes| {
                seen.record(&headers, &body);
                async {
                    Json(json!({"object": "list", "model": "text-embedding-3-small",
                        "data": [{"object": "embedding", "index": 1, "embedding": [0.0, 1.0]},
                                 {"object": "embedding", "index": 0, "embedding": [1.0, 0.0]}],
                        "usage": {"prompt_tokens": 5, "total_tokens": 5}}))
                }
            }),
        );
        let base_url = format!("{}/v1", serve(router).await);
        let inputs = vec!["first".to_owned(), "second".to_owned()];

        let output = provider(&base_url)
            .embed("text-embedding-3-small", &inputs)
            .await
            .unwrap();

        assert_eq!(output.vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert_eq!(output.prompt_tokens, 5);
        assert_eq!(captured.last().1["input"], json!(["first", "second"]));
    }

    #[tokio::test]
    async fn models_are_listed_with_their_owner() {
        let router = Router::new().route(
            "/v1/models",
            get(|| async {
                Json(json!({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "system"}]}))
            }),
        );
        let base_url = format!("{}/v1", serve(router).await);

        let models = provider(&base_url).list_models().await.unwrap();

        assert_eq!(
            models,
            [ModelInfo {
                id: "gpt-4o-mini".into(),
                owned_by: "system".into()
            }]
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);

        let error = provider(&format!("http://{address}/v1"))
            .complete(&user_request("m", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(
                error,
                ProviderError::Connect {
                    provider: "openai",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
