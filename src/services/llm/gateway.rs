//! [`LlmGateway`]: the one entry point to the LLM providers. It holds the configured
//! providers, routes a model name to one, falls back along `FALLBACK_MODELS` when a call
//! fails before any token was produced, and records metrics for every call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::anthropic::AnthropicProvider;
use super::http::{LlmHttp, RetryPolicy};
use super::local::{LOCAL_MODEL, LocalProvider};
use super::metered::MeteredStream;
use super::metrics::LlmMetrics;
use super::ollama::OllamaProvider;
use super::openai::OpenAiProvider;
use super::routing::{ProviderId, route};
use super::{
    Completion, CompletionRequest, EmbeddingOutput, LlmProvider, ModelInfo, ProviderError,
    RemoteEmbedder,
};
use crate::secret::Secret;

const OPENAI_OFFICIAL_BASE_URL: &str = "https://api.openai.com/v1";
const OPENAI_DEFAULT_MODEL: &str = "gpt-4o-mini";
const ANTHROPIC_DEFAULT_MODEL: &str = "claude-3-5-haiku-latest";
/// Asking Ollama for its first model would slow start-up; this is its common default.
const OLLAMA_DEFAULT_MODEL: &str = "ollama/llama3.2";

/// What the gateway needs from the configuration; the config module maps into it.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: String,
    /// `None`: Ollama is not configured.
    pub ollama_base_url: Option<String>,
    pub anthropic_api_key: Option<Secret>,
    pub anthropic_base_url: String,
    pub default_model: Option<String>,
    /// Tried in order when the requested model fails before producing any token.
    pub fallback_models: Vec<String>,
    /// Bounds a whole call: all retries, and a stream to its end.
    pub timeout: Duration,
    /// Bounds each silence between two chunks of a stream.
    pub idle_timeout: Duration,
    /// When set, a stream whose first token takes longer fails over to the next model.
    pub ttft_timeout: Option<Duration>,
    pub max_retries: u32,
}

/// A result together with the provider and model (routable name) that produced it.
#[derive(Debug)]
pub struct Routed<T> {
    pub provider: &'static str,
    pub model: String,
    pub value: T,
}

pub struct LlmGateway {
    providers: HashMap<ProviderId, Arc<dyn LlmProvider>>,
    embedders: HashMap<ProviderId, Arc<dyn RemoteEmbedder>>,
    default_model: String,
    fallback_models: Vec<String>,
    ttft_timeout: Option<Duration>,
    metrics: Arc<LlmMetrics>,
}

impl LlmGateway {
    pub fn new(settings: LlmSettings) -> Result<Self, ProviderError> {
        let retry = RetryPolicy::new(settings.max_retries);
        Self::with_retry_policy(settings, retry)
    }

    fn with_retry_policy(settings: LlmSettings, retry: RetryPolicy) -> Result<Self, ProviderError> {
        let http = LlmHttp::new(settings.timeout, settings.idle_timeout, retry)?;
        let mut providers: HashMap<ProviderId, Arc<dyn LlmProvider>> = HashMap::new();
        let mut embedders: HashMap<ProviderId, Arc<dyn RemoteEmbedder>> = HashMap::new();
        let mut defaults = Vec::new();

        let openai_key = settings.openai_api_key.filter(|key| !key.is_empty());
        let custom_openai_server =
            settings.openai_base_url.trim_end_matches('/') != OPENAI_OFFICIAL_BASE_URL;
        if openai_key.is_some() || custom_openai_server {
            let openai = Arc::new(OpenAiProvider::new(
                http.clone(),
                &settings.openai_base_url,
                openai_key,
            ));
            providers.insert(ProviderId::OpenAi, openai.clone());
            embedders.insert(ProviderId::OpenAi, openai);
            defaults.push(OPENAI_DEFAULT_MODEL);
        }
        if let Some(key) = settings.anthropic_api_key.filter(|key| !key.is_empty()) {
            let anthropic =
                AnthropicProvider::new(http.clone(), &settings.anthropic_base_url, &key)?;
            providers.insert(ProviderId::Anthropic, Arc::new(anthropic));
            defaults.push(ANTHROPIC_DEFAULT_MODEL);
        }
        if let Some(base_url) = settings.ollama_base_url.filter(|url| !url.is_empty()) {
            let ollama = Arc::new(OllamaProvider::new(http, &base_url));
            providers.insert(ProviderId::Ollama, ollama.clone());
            embedders.insert(ProviderId::Ollama, ollama);
            defaults.push(OLLAMA_DEFAULT_MODEL);
        }
        providers.insert(ProviderId::Local, Arc::new(LocalProvider));

        let default_model = settings
            .default_model
            .filter(|model| !model.is_empty())
            .or_else(|| defaults.first().map(|model| (*model).to_owned()))
            .unwrap_or_else(|| LOCAL_MODEL.to_owned());
        let configured = std::iter::once(&default_model).chain(&settings.fallback_models);
        for model in configured.clone() {
            let provider = route(model).provider;
            if !providers.contains_key(&provider) {
                let error = not_configured(model, provider);
                tracing::warn!(%error, "a configured model has no provider: calls to it will fail");
            }
        }
        let metrics = LlmMetrics::with_models(
            configured.map(|model| (route(model).provider.name(), model.as_str())),
        );
        Ok(Self {
            providers,
            embedders,
            default_model,
            fallback_models: settings.fallback_models,
            ttft_timeout: settings.ttft_timeout,
            metrics: Arc::new(metrics),
        })
    }

    /// The model used when a request names none.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// Names of the providers that are configured (the local one always is).
    pub fn configured_providers(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.providers.keys().map(|id| id.name()).collect();
        names.sort_unstable();
        names
    }

    /// Answers with `model`, or with the first fallback model that succeeds.
    /// `request.model` is ignored: each candidate's provider-local name replaces it.
    pub async fn complete(
        &self,
        model: &str,
        request: &CompletionRequest,
    ) -> Result<Routed<Completion>, ProviderError> {
        let mut reported = None;
        for candidate in self.candidates(model) {
            let provider_id = route(candidate).provider;
            let mut metrics = self.metrics.start(provider_id.name(), candidate);
            let outcome = match self.resolve(candidate, request) {
                Ok((provider, routed_request)) => provider.complete(&routed_request).await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(completion) => {
                    metrics.success(completion.usage, metrics.elapsed());
                    return Ok(Routed {
                        provider: provider_id.name(),
                        model: candidate.to_owned(),
                        value: completion,
                    });
                }
                Err(error) => {
                    metrics.failure(&error);
                    keep_telling(&mut reported, error);
                }
            }
        }
        Err(reported.unwrap_or_else(|| not_configured(model, ProviderId::OpenAi)))
    }

    /// Streams the answer of `model`, falling back to the next model while no token has
    /// been produced yet. The returned stream always ends with `Done` carrying usage, or
    /// with an error; dropping it cancels the upstream request.
    pub async fn stream(
        &self,
        model: &str,
        request: &CompletionRequest,
    ) -> Result<Routed<MeteredStream>, ProviderError> {
        let mut reported = None;
        for candidate in self.candidates(model) {
            match self.open_stream(candidate, request).await {
                Ok(stream) => return Ok(stream),
                Err(error) => keep_telling(&mut reported, error),
            }
        }
        Err(reported.unwrap_or_else(|| not_configured(model, ProviderId::OpenAi)))
    }

    /// Opens one candidate's stream and waits for its first event, so that a failure before
    /// the first token can still fall back.
    async fn open_stream(
        &self,
        candidate: &str,
        request: &CompletionRequest,
    ) -> Result<Routed<MeteredStream>, ProviderError> {
        let provider_id = route(candidate).provider;
        let metrics = self.metrics.start(provider_id.name(), candidate);
        let (provider, routed_request) = match self.resolve(candidate, request) {
            Ok(resolved) => resolved,
            Err(error) => {
                metrics.failure(&error);
                return Err(error);
            }
        };
        let routed_request = Arc::new(routed_request);
        let deadline = self.ttft_timeout.map(|limit| Instant::now() + limit);
        let timed_out = || ProviderError::Timeout {
            provider: provider.name(),
        };
        let inner = match within(deadline, provider.stream(&routed_request)).await {
            Some(Ok(inner)) => inner,
            Some(Err(error)) => {
                metrics.failure(&error);
                return Err(error);
            }
            None => {
                let error = timed_out();
                metrics.failure(&error);
                return Err(error);
            }
        };
        let mut metered = MeteredStream::new(inner, provider.name(), metrics, routed_request);
        // The metered stream records its own errors; only the timeout is decided here.
        let first = match within(deadline, metered.next()).await {
            Some(Some(Ok(first))) => first,
            Some(Some(Err(error))) => return Err(error),
            Some(None) => {
                return Err(ProviderError::StreamCut {
                    provider: provider.name(),
                });
            }
            None => {
                let error = timed_out();
                metered.fail(&error);
                return Err(error);
            }
        };
        metered.replay(first);
        Ok(Routed {
            provider: provider.name(),
            model: candidate.to_owned(),
            value: metered,
        })
    }

    /// Every configured provider's models; a provider that fails is skipped with a warning.
    pub async fn list_models(&self) -> Vec<ModelInfo> {
        let order = [
            ProviderId::OpenAi,
            ProviderId::Anthropic,
            ProviderId::Ollama,
            ProviderId::Local,
        ];
        let lists = order
            .iter()
            .filter_map(|id| self.providers.get(id))
            .map(|provider| async move { (provider.name(), provider.list_models().await) });
        let mut models = Vec::new();
        for (name, listed) in futures::future::join_all(lists).await {
            match listed {
                Ok(listed) => models.extend(listed),
                Err(error) => {
                    tracing::warn!(provider = name, kind = error.kind(), error = %error, "cannot list models");
                }
            }
        }
        models
    }

    /// Embeds `inputs` with a remote embedding model (`text-embedding-3-small`,
    /// `ollama/nomic-embed-text`).
    pub async fn embed(
        &self,
        model: &str,
        inputs: &[String],
    ) -> Result<Routed<EmbeddingOutput>, ProviderError> {
        let target = route(model);
        let embedder = match self.embedders.get(&target.provider) {
            Some(embedder) => embedder,
            None if self.providers.contains_key(&target.provider) => {
                return Err(ProviderError::Unsupported {
                    provider: target.provider.name(),
                    operation: "embeddings",
                });
            }
            None => return Err(not_configured(model, target.provider)),
        };
        let output = embedder.embed(target.local_model, inputs).await?;
        Ok(Routed {
            provider: target.provider.name(),
            model: model.to_owned(),
            value: output,
        })
    }

    /// `model` first, then each fallback model not already tried.
    fn candidates<'a>(&'a self, model: &'a str) -> impl Iterator<Item = &'a str> {
        std::iter::once(model).chain(
            self.fallback_models
                .iter()
                .map(String::as_str)
                .filter(move |fallback| *fallback != model),
        )
    }

    /// The provider serving `model`, and the request rewritten with its provider-local name.
    fn resolve(
        &self,
        model: &str,
        request: &CompletionRequest,
    ) -> Result<(Arc<dyn LlmProvider>, CompletionRequest), ProviderError> {
        let target = route(model);
        let provider = self
            .providers
            .get(&target.provider)
            .ok_or_else(|| not_configured(model, target.provider))?;
        let routed_request = CompletionRequest {
            model: target.local_model.to_owned(),
            ..request.clone()
        };
        Ok((provider.clone(), routed_request))
    }
}

/// Keeps, of the errors of the models tried in turn, the one that tells the caller most: the
/// first that a configured provider gave. A fallback model with no provider says nothing
/// about why the model asked for failed; it is reported only if no provider answered at all.
fn keep_telling(reported: &mut Option<ProviderError>, error: ProviderError) {
    let telling = |error: &ProviderError| !matches!(error, ProviderError::NotConfigured { .. });
    match reported {
        Some(kept) if telling(kept) || !telling(&error) => {}
        _ => *reported = Some(error),
    }
}

/// Runs `future` until `deadline` (if any); `None` when the deadline passed first.
async fn within<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        None => Some(future.await),
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
    }
}

fn not_configured(model: &str, provider: ProviderId) -> ProviderError {
    let hint = match provider {
        ProviderId::OpenAi => "set OPENAI_API_KEY, or OPENAI_BASE_URL for a compatible server",
        ProviderId::Anthropic => "set ANTHROPIC_API_KEY",
        ProviderId::Ollama => "set OLLAMA_BASE_URL",
        ProviderId::Local => "the built-in provider offers only local/extractive",
    };
    ProviderError::NotConfigured {
        model: model.to_owned(),
        hint,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Json;
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use bytes::Bytes;
    use serde_json::json;

    use super::*;
    use crate::services::llm::test_support::*;
    use crate::services::llm::{FinishReason, StreamEvent, Usage, tokens};

    fn settings() -> LlmSettings {
        LlmSettings {
            openai_api_key: None,
            openai_base_url: OPENAI_OFFICIAL_BASE_URL.to_owned(),
            ollama_base_url: None,
            anthropic_api_key: None,
            anthropic_base_url: "https://api.anthropic.com".to_owned(),
            default_model: None,
            fallback_models: Vec::new(),
            timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            ttft_timeout: None,
            max_retries: 2,
        }
    }

    fn gateway(settings: LlmSettings) -> LlmGateway {
        LlmGateway::with_retry_policy(settings, fast_retries()).unwrap()
    }

    fn openai_chunk(content: &str) -> String {
        data(
            json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}}]}),
        )
    }

    fn ollama_answer(content: &str) -> serde_json::Value {
        json!({"model": "llama3.2", "message": {"role": "assistant", "content": content}, "done": true,
            "prompt_eval_count": 5, "eval_count": 2})
    }

    /// One mock server that speaks both OpenAI (under /v1) and Ollama (under /api).
    struct Upstreams {
        url: String,
        ollama_calls: Arc<AtomicUsize>,
        ollama_requests: Captured,
    }

    impl Upstreams {
        async fn start(openai_chat: axum::routing::MethodRouter) -> Self {
            let ollama_calls = Arc::new(AtomicUsize::new(0));
            let ollama_requests = Captured::default();
            let (calls, seen) = (ollama_calls.clone(), ollama_requests.clone());
            let router = Router::new()
                .route("/v1/chat/completions", openai_chat)
                .route("/v1/models", get(|| async { Json(json!({"data": [{"id": "gpt-4o-mini", "owned_by": "openai"}]})) }))
                .route(
                    "/api/chat",
                    post(move |headers: HeaderMap, body: Bytes| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        seen.record(&headers, &body);
                        let streamed = seen.last().1["stream"] == true;
                        async move {
                            if streamed {
                                let token = json!({"message": {"role": "assistant", "content": "from ollama"}, "done": false});
                                ndjson(vec![token.to_string(), ollama_answer("").to_string()])
                            } else {
                                Json(ollama_answer("from ollama")).into_response()
                            }
                        }
                    }),
                );
            Self {
                url: serve(router).await,
                ollama_calls,
                ollama_requests,
            }
        }

        fn settings(&self, fallback_models: &[&str]) -> LlmSettings {
            LlmSettings {
                openai_base_url: format!("{}/v1", self.url),
                ollama_base_url: Some(self.url.clone()),
                fallback_models: fallback_models
                    .iter()
                    .map(|model| (*model).to_owned())
                    .collect(),
                ..settings()
            }
        }
    }

    fn failing_openai() -> axum::routing::MethodRouter {
        post(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": {"message": "overloaded"}})),
            )
        })
    }

    #[test]
    fn the_default_model_is_the_first_configured_provider_else_local() {
        assert_eq!(gateway(settings()).default_model(), LOCAL_MODEL);
        let with_key = LlmSettings {
            openai_api_key: Some(Secret::new("sk-x")),
            ..settings()
        };
        assert_eq!(gateway(with_key).default_model(), OPENAI_DEFAULT_MODEL);
        let anthropic = LlmSettings {
            anthropic_api_key: Some(Secret::new("sk-ant")),
            ..settings()
        };
        assert_eq!(gateway(anthropic).default_model(), ANTHROPIC_DEFAULT_MODEL);
        let ollama = LlmSettings {
            ollama_base_url: Some("http://localhost:11434".into()),
            ..settings()
        };
        assert_eq!(gateway(ollama).default_model(), OLLAMA_DEFAULT_MODEL);
        let chosen = LlmSettings {
            default_model: Some("ollama/qwen3".into()),
            ..settings()
        };
        assert_eq!(gateway(chosen).default_model(), "ollama/qwen3");
    }

    #[tokio::test]
    async fn a_model_whose_provider_is_not_configured_is_not_configured() {
        let gateway = gateway(settings());

        for model in ["gpt-4o-mini", "ollama/llama3.2", "claude-3-5-haiku-latest"] {
            let error = gateway
                .complete(model, &user_request("", "Hi"))
                .await
                .unwrap_err();
            assert!(
                matches!(error, ProviderError::NotConfigured { .. }),
                "{model}: {error:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_compatible_server_is_used_without_a_key_and_the_answer_says_who_answered() {
        let upstreams = Upstreams::start(post(|| async {
            Json(
                json!({"model": "qwen", "choices": [{"message": {"content": "hi"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}),
            )
        }))
        .await;

        let routed = gateway(upstreams.settings(&[]))
            .complete("qwen", &user_request("", "Hi"))
            .await
            .unwrap();

        assert_eq!((routed.provider, routed.model.as_str()), ("openai", "qwen"));
        assert_eq!(routed.value.text, "hi");
    }

    #[tokio::test]
    async fn complete_falls_back_to_the_next_model_with_its_prefix_stripped() {
        let upstreams = Upstreams::start(failing_openai()).await;
        let gateway = gateway(upstreams.settings(&["ollama/llama3.2"]));

        let routed = gateway
            .complete("gpt-4o-mini", &user_request("", "Hi"))
            .await
            .unwrap();

        assert_eq!(
            (routed.provider, routed.model.as_str()),
            ("ollama", "ollama/llama3.2")
        );
        assert_eq!(routed.value.text, "from ollama");
        assert_eq!(upstreams.ollama_requests.last().1["model"], "llama3.2");
    }

    #[tokio::test]
    async fn a_fallback_model_without_a_provider_does_not_hide_why_the_model_failed() {
        let upstreams = Upstreams::start(failing_openai()).await;
        // Anthropic is not configured: its model can only fail with "not configured".
        let gateway = gateway(upstreams.settings(&["claude-3-5-haiku-latest"]));
        let request = user_request("", "Hi");

        let completed = gateway.complete("gpt-4o-mini", &request).await.err();
        let streamed = gateway.stream("gpt-4o-mini", &request).await.err();

        for error in [completed, streamed] {
            assert!(
                matches!(error, Some(ProviderError::Upstream { status: 503, .. })),
                "{error:?}"
            );
        }
        // Asked for a model with no provider, the failure of the fallback that has one tells.
        let gateway = self::gateway(upstreams.settings(&["gpt-4o"]));
        let error = gateway.complete("claude-x", &request).await.err();
        assert!(
            matches!(error, Some(ProviderError::Upstream { status: 503, .. })),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn when_every_model_fails_the_first_error_is_returned() {
        let upstreams = Upstreams::start(failing_openai()).await;
        let gateway = gateway(upstreams.settings(&["gpt-4o"]));

        let error = gateway
            .complete("gpt-4o-mini", &user_request("", "Hi"))
            .await
            .unwrap_err();

        assert!(
            matches!(error, ProviderError::Upstream { status: 503, .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn stream_falls_back_when_the_provider_fails_before_the_first_token() {
        let upstreams = Upstreams::start(post(|| async {
            cut_after("text/event-stream", Vec::new())
        }))
        .await;
        let gateway = gateway(upstreams.settings(&["ollama/llama3.2"]));

        let routed = gateway
            .stream("gpt-4o-mini", &user_request("", "Hi"))
            .await
            .unwrap();
        let events: Vec<_> = routed.value.map(Result::unwrap).collect().await;

        assert_eq!(routed.provider, "ollama");
        assert_eq!(
            events.first(),
            Some(&StreamEvent::Token("from ollama".into()))
        );
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done {
                usage: Some(Usage::new(5, 2)),
                finish: FinishReason::Stop,
            })
        );
    }

    #[tokio::test]
    async fn stream_does_not_fall_back_once_a_token_was_produced() {
        let upstreams = Upstreams::start(post(|| async {
            cut_after("text/event-stream", vec![openai_chunk("Hel")])
        }))
        .await;
        let gateway = gateway(upstreams.settings(&["ollama/llama3.2"]));

        let routed = gateway
            .stream("gpt-4o-mini", &user_request("", "Hi"))
            .await
            .unwrap();
        let events: Vec<_> = routed.value.collect().await;

        assert_eq!(routed.provider, "openai");
        assert!(matches!(&events[0], Ok(StreamEvent::Token(text)) if text == "Hel"));
        assert!(
            matches!(events.last(), Some(Err(ProviderError::StreamCut { .. }))),
            "{events:?}"
        );
        assert_eq!(upstreams.ollama_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_stalled_first_token_fails_over_after_the_ttft_timeout() {
        let upstreams = Upstreams::start(post(|| async {
            stall_after("text/event-stream", Vec::new())
        }))
        .await;
        let settings = LlmSettings {
            ttft_timeout: Some(Duration::from_millis(200)),
            ..upstreams.settings(&[LOCAL_MODEL])
        };

        let routed = gateway(settings)
            .stream("gpt-4o-mini", &user_request("", "Hi"))
            .await
            .unwrap();

        assert_eq!(
            (routed.provider, routed.model.as_str()),
            ("local", LOCAL_MODEL)
        );
    }

    #[tokio::test]
    async fn a_stream_without_reported_usage_is_counted_with_the_tokenizer() {
        let upstreams = Upstreams::start(post(|| async {
            sse(vec![
                openai_chunk("Hello"),
                openai_chunk(" world"),
                "data: [DONE]\n\n".to_owned(),
            ])
        }))
        .await;
        let request = user_request("", "Hi");

        let routed = gateway(upstreams.settings(&[]))
            .stream("gpt-4o-mini", &request)
            .await
            .unwrap();
        let events: Vec<_> = routed.value.map(Result::unwrap).collect().await;

        let expected = Usage::new(
            tokens::count_messages("gpt-4o-mini", &request.messages),
            tokens::count_text("gpt-4o-mini", "Hello world"),
        );
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done {
                usage: Some(expected),
                finish: FinishReason::Stop,
            })
        );
        assert_eq!(expected.completion_tokens, 2);
    }

    #[tokio::test]
    async fn list_models_merges_providers_and_skips_one_that_fails() {
        let upstreams = Upstreams::start(failing_openai()).await;
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let unreachable = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let settings = LlmSettings {
            anthropic_api_key: Some(Secret::new("sk-ant")),
            anthropic_base_url: unreachable,
            ..upstreams.settings(&[])
        };

        let ids: Vec<String> = gateway(settings)
            .list_models()
            .await
            .into_iter()
            .map(|model| model.id)
            .collect();

        assert_eq!(
            ids,
            ["gpt-4o-mini", LOCAL_MODEL],
            "anthropic is down and this Ollama has no /api/tags"
        );
    }

    #[tokio::test]
    async fn embeddings_are_routed_and_refused_where_unsupported() {
        let router = Router::new().route(
            "/api/embed",
            post(|| async { Json(json!({"embeddings": [[0.5, 0.5]], "prompt_eval_count": 1})) }),
        );
        let url = serve(router).await;
        let settings = LlmSettings {
            ollama_base_url: Some(url),
            anthropic_api_key: Some(Secret::new("sk-ant")),
            ..settings()
        };
        let gateway = gateway(settings);
        let inputs = vec!["text".to_owned()];

        let routed = gateway
            .embed("ollama/nomic-embed-text", &inputs)
            .await
            .unwrap();
        assert_eq!((routed.provider, routed.value.vectors.len()), ("ollama", 1));

        let anthropic = gateway
            .embed("anthropic/claude-x", &inputs)
            .await
            .unwrap_err();
        assert!(matches!(
            anthropic,
            ProviderError::Unsupported {
                provider: "anthropic",
                ..
            }
        ));
        let openai = gateway
            .embed("text-embedding-3-small", &inputs)
            .await
            .unwrap_err();
        assert!(matches!(openai, ProviderError::NotConfigured { .. }));
    }
}
