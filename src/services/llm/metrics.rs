//! What one provider call records: the Prometheus series of the LLM layer and one
//! structured log line (never the prompt or the answer).

use std::time::Duration;

use metrics::{counter, histogram};
use tokio::time::Instant;

use super::{ProviderError, Usage};

/// The model label used when the model name may be arbitrary user input the provider
/// rejected, so that bad names cannot grow the series without bound.
const UNVERIFIED_MODEL: &str = "other";

/// Measures one call to one provider from its start.
pub struct CallMetrics {
    provider: &'static str,
    model: String,
    started: Instant,
}

impl CallMetrics {
    pub fn start(provider: &'static str, model: &str) -> Self {
        Self {
            provider,
            model: model.to_owned(),
            started: Instant::now(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records the time to the first token of a stream.
    pub fn first_token(&self) -> Duration {
        let ttft = self.started.elapsed();
        histogram!("llm_time_to_first_token_seconds", "provider" => self.provider, "model" => self.model.clone())
            .record(ttft.as_secs_f64());
        ttft
    }

    /// Records a completed call. `generation` is the time spent producing output (from the
    /// first token for streams, the whole call otherwise).
    pub fn success(&self, usage: Usage, generation: Duration) {
        let duration = self.started.elapsed();
        counter!("llm_requests_total", "provider" => self.provider, "model" => self.model.clone(), "outcome" => "success")
            .increment(1);
        histogram!("llm_request_duration_seconds", "provider" => self.provider, "model" => self.model.clone()).record(duration.as_secs_f64());
        counter!("llm_tokens_total", "provider" => self.provider, "model" => self.model.clone(), "kind" => "prompt")
            .increment(u64::from(usage.prompt_tokens));
        counter!("llm_tokens_total", "provider" => self.provider, "model" => self.model.clone(), "kind" => "completion")
            .increment(u64::from(usage.completion_tokens));
        let seconds = generation.as_secs_f64();
        if usage.completion_tokens > 0 && seconds > 0.0 {
            histogram!("llm_output_tokens_per_second", "provider" => self.provider, "model" => self.model.clone())
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

    pub fn failure(&self, error: &ProviderError) {
        let duration = self.started.elapsed();
        let model = if model_was_rejected(error) {
            UNVERIFIED_MODEL.to_owned()
        } else {
            self.model.clone()
        };
        counter!("llm_requests_total", "provider" => self.provider, "model" => model.clone(), "outcome" => "error")
            .increment(1);
        counter!("llm_errors_total", "provider" => self.provider, "kind" => error.kind())
            .increment(1);
        histogram!("llm_request_duration_seconds", "provider" => self.provider, "model" => model)
            .record(duration.as_secs_f64());
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
        counter!("llm_requests_total", "provider" => self.provider, "model" => self.model.clone(), "outcome" => "cancelled")
            .increment(1);
        histogram!("llm_request_duration_seconds", "provider" => self.provider, "model" => self.model.clone())
            .record(duration.as_secs_f64());
        tracing::info!(
            provider = self.provider,
            model = %self.model,
            outcome = "cancelled",
            duration_ms = millis(duration),
            "llm call"
        );
    }
}

/// Errors that say the model name itself was not accepted.
fn model_was_rejected(error: &ProviderError) -> bool {
    match error {
        ProviderError::NotConfigured { .. } => true,
        ProviderError::Upstream { status, .. } => (400..500).contains(status),
        _ => false,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
