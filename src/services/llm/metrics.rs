//! What one provider call records: the Prometheus series of the LLM layer and one
//! structured log line (never the prompt or the answer).
//!
//! The model name comes from the request, so it cannot become a label as it is: a client
//! sending a new name per request would grow the series (and the operator's Prometheus)
//! without bound. A model gets its own `model` label once a provider has answered with it,
//! or when the operator configured it, up to [`MAX_MODEL_LABELS`]; every other call counts
//! under `model="other"`. The log line always names the model asked for.
//!
//! Each label's series are looked up in the recorder once and their handles kept, so a call
//! costs a map lookup instead of a registry lookup per counter.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram, counter, histogram};
use tokio::time::Instant;

use super::{ProviderError, Usage};

/// The model label of calls whose model no provider has accepted yet, and of every model
/// past the bound.
const UNVERIFIED_MODEL: &str = "other";

/// How many distinct (provider, model) labels the process keeps; enough for any real
/// deployment's models, small enough that series stay cheap.
pub const MAX_MODEL_LABELS: usize = 64;

/// The handles of one (provider, model) label's series.
struct ModelSeries {
    succeeded: Counter,
    failed: Counter,
    cancelled: Counter,
    duration: Histogram,
    first_token: Histogram,
    prompt_tokens: Counter,
    completion_tokens: Counter,
    output_rate: Histogram,
}

impl ModelSeries {
    fn register(provider: &'static str, model: &str) -> Self {
        let requests = |outcome: &'static str| counter!("llm_requests_total", "provider" => provider, "model" => model.to_owned(), "outcome" => outcome);
        let tokens = |kind: &'static str| counter!("llm_tokens_total", "provider" => provider, "model" => model.to_owned(), "kind" => kind);
        Self {
            succeeded: requests("success"),
            failed: requests("error"),
            cancelled: requests("cancelled"),
            duration: histogram!("llm_request_duration_seconds", "provider" => provider, "model" => model.to_owned()),
            first_token: histogram!("llm_time_to_first_token_seconds", "provider" => provider, "model" => model.to_owned()),
            prompt_tokens: tokens("prompt"),
            completion_tokens: tokens("completion"),
            output_rate: histogram!("llm_output_tokens_per_second", "provider" => provider, "model" => model.to_owned()),
        }
    }
}

type SeriesByModel = HashMap<Box<str>, Arc<ModelSeries>>;

/// The LLM layer's metric series, by provider and admitted model. One per gateway; the
/// recorder must be installed before the first call (handles taken earlier record nothing).
#[derive(Default)]
pub struct LlmMetrics {
    admitted: RwLock<HashMap<&'static str, SeriesByModel>>,
    others: RwLock<HashMap<&'static str, Arc<ModelSeries>>>,
}

impl LlmMetrics {
    /// Gives `models` (the operator's configured ones, as routable names with their
    /// providers) their own labels from the start.
    pub fn with_models<'a>(models: impl IntoIterator<Item = (&'static str, &'a str)>) -> Self {
        let metrics = Self::default();
        for (provider, model) in models {
            metrics.admit(provider, model);
        }
        metrics
    }

    /// Starts measuring one call of `model` on `provider`.
    pub fn start(self: &Arc<Self>, provider: &'static str, model: &str) -> CallMetrics {
        let admitted = self.admitted_series(provider, model);
        CallMetrics {
            registry: self.clone(),
            provider,
            model: model.to_owned(),
            series: admitted.clone().unwrap_or_else(|| self.other(provider)),
            verified: admitted.is_some(),
            started: Instant::now(),
        }
    }

    fn admitted_series(&self, provider: &'static str, model: &str) -> Option<Arc<ModelSeries>> {
        let admitted = self.admitted.read().unwrap_or_else(PoisonError::into_inner);
        admitted.get(provider)?.get(model).cloned()
    }

    /// `model`'s own series, registered if the bound allows; otherwise the "other" series.
    fn admit(&self, provider: &'static str, model: &str) -> Arc<ModelSeries> {
        let mut admitted = self
            .admitted
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(series) = admitted.get(provider).and_then(|models| models.get(model)) {
            return series.clone();
        }
        let labels: usize = admitted.values().map(HashMap::len).sum();
        if labels >= MAX_MODEL_LABELS {
            drop(admitted);
            tracing::warn!(
                provider,
                model,
                limit = MAX_MODEL_LABELS,
                "too many models for their own metric labels; counting this one as \"other\""
            );
            return self.other(provider);
        }
        let series = Arc::new(ModelSeries::register(provider, model));
        admitted
            .entry(provider)
            .or_default()
            .insert(model.into(), series.clone());
        series
    }

    fn other(&self, provider: &'static str) -> Arc<ModelSeries> {
        if let Some(series) = self
            .others
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider)
        {
            return series.clone();
        }
        self.others
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(provider)
            .or_insert_with(|| Arc::new(ModelSeries::register(provider, UNVERIFIED_MODEL)))
            .clone()
    }
}

/// Measures one call to one provider from its start.
pub struct CallMetrics {
    registry: Arc<LlmMetrics>,
    provider: &'static str,
    model: String,
    series: Arc<ModelSeries>,
    /// Whether `series` is the model's own; until a provider answers, it may be "other".
    verified: bool,
    started: Instant,
}

impl CallMetrics {
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The provider answered with this model: from now on it has its own label.
    fn verify(&mut self) {
        if !self.verified {
            self.series = self.registry.admit(self.provider, &self.model);
            self.verified = true;
        }
    }

    /// Records the time to the first token of a stream.
    pub fn first_token(&mut self) -> Duration {
        self.verify();
        let ttft = self.started.elapsed();
        self.series.first_token.record(ttft.as_secs_f64());
        ttft
    }

    /// Records a completed call. `generation` is the time spent producing output (from the
    /// first token for streams, the whole call otherwise).
    pub fn success(&mut self, usage: Usage, generation: Duration) {
        self.verify();
        let duration = self.started.elapsed();
        let series = &self.series;
        series.succeeded.increment(1);
        series.duration.record(duration.as_secs_f64());
        self.tokens(usage);
        let seconds = generation.as_secs_f64();
        if usage.completion_tokens > 0 && seconds > 0.0 {
            series
                .output_rate
                .record(f64::from(usage.completion_tokens) / seconds);
        }
        tracing::info!(
            provider = self.provider,
            model = %self.model,
            outcome = "success",
            duration_ms = millis(duration),
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            "llm call"
        );
    }

    /// Adds a call's tokens to `llm_tokens_total`: a whole answer's, or what a stream that
    /// failed or was abandoned had consumed and produced until then.
    pub fn tokens(&self, usage: Usage) {
        self.series
            .prompt_tokens
            .increment(u64::from(usage.prompt_tokens));
        self.series
            .completion_tokens
            .increment(u64::from(usage.completion_tokens));
    }

    pub fn failure(&self, error: &ProviderError) {
        let duration = self.started.elapsed();
        self.series.failed.increment(1);
        self.series.duration.record(duration.as_secs_f64());
        counter!("llm_errors_total", "provider" => self.provider, "kind" => error.kind())
            .increment(1);
        tracing::warn!(
            provider = self.provider,
            model = %self.model,
            outcome = "error",
            kind = error.kind(),
            duration_ms = millis(duration),
            error = %error,
            "llm call"
        );
    }

    /// The caller went away before the answer was complete.
    pub fn cancelled(&self) {
        let duration = self.started.elapsed();
        self.series.cancelled.increment(1);
        self.series.duration.record(duration.as_secs_f64());
        tracing::info!(
            provider = self.provider,
            model = %self.model,
            outcome = "cancelled",
            duration_ms = millis(duration),
            "llm call"
        );
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn label_count(metrics: &LlmMetrics) -> usize {
        metrics
            .admitted
            .read()
            .unwrap()
            .values()
            .map(HashMap::len)
            .sum()
    }

    #[test]
    fn a_model_gets_its_own_label_only_once_a_provider_answered_with_it() {
        let metrics = Arc::new(LlmMetrics::with_models([("openai", "gpt-4o-mini")]));
        assert!(metrics.start("openai", "gpt-4o-mini").verified);

        let mut call = metrics.start("openai", "made-up-model");
        assert!(!call.verified, "an unknown name starts under \"other\"");
        call.failure(&ProviderError::Upstream {
            provider: "openai",
            status: 404,
            message: "no such model".to_owned(),
        });
        assert!(!metrics.start("openai", "made-up-model").verified);
        assert_eq!(label_count(&metrics), 1);

        call = metrics.start("openai", "gpt-4.1");
        call.success(Usage::default(), Duration::ZERO);
        assert!(metrics.start("openai", "gpt-4.1").verified);
        assert!(
            !metrics.start("anthropic", "gpt-4.1").verified,
            "labels are per provider"
        );
        assert_eq!(label_count(&metrics), 2);
    }

    #[test]
    fn labels_stop_growing_at_the_bound() {
        let metrics = Arc::new(LlmMetrics::default());
        for n in 0..MAX_MODEL_LABELS + 10 {
            let mut call = metrics.start("openai", &format!("model-{n}"));
            call.first_token();
        }
        assert_eq!(label_count(&metrics), MAX_MODEL_LABELS);
        assert!(metrics.start("openai", "model-0").verified);
        assert!(!metrics.start("openai", "model-70").verified);
    }
}
