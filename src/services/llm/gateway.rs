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
use super::metrics::CallMetrics;
use super::ollama::OllamaProvider;
use super::openai::OpenAiProvider;
use super::routing::{ProviderId, route};
use super::{
    Completion, CompletionRequest, EmbeddingOutput, EventStream, LlmProvider, ModelInfo,
    ProviderError, RemoteEmbedder, StreamEvent,
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
        Ok(Self {
            providers,
            embedders,
            default_model,
            fallback_models: settings.fallback_models,
            ttft_timeout: settings.ttft_timeout,
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
        let mut last_error = None;
        for candidate in self.candidates(model) {
            let provider_id = route(candidate).provider;
            let metrics = CallMetrics::start(provider_id.name(), candidate);
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
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| not_configured(model, ProviderId::OpenAi)))
    }

    /// Streams the answer of `model`, falling back to the next model while no token has
    /// been produced yet. The returned stream always ends with `Done` carrying usage, or
    /// with an error; dropping it cancels the upstream request.
    pub async fn stream(
        &self,
        model: &str,
        request: &CompletionRequest,
    ) -> Result<Routed<EventStream>, ProviderError> {
        let mut last_error = None;
        for candidate in self.candidates(model) {
            match self.open_stream(candidate, request).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| not_configured(model, ProviderId::OpenAi)))
    }

    /// Opens one candidate's stream and waits for its first event, so that a failure before
    /// the first token can still fall back.
    async fn open_stream(
        &self,
        candidate: &str,
        request: &CompletionRequest,
    ) -> Result<Routed<EventStream>, ProviderError> {
        let provider_id = route(candidate).provider;
        let metrics = CallMetrics::start(provider_id.name(), candidate);
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
        let stream = futures::stream::once(async move { Ok::<StreamEvent, ProviderError>(first) })
            .chain(metered)
            .boxed();
        Ok(Routed {
            provider: provider.name(),
            model: candidate.to_owned(),
            value: stream,
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
