//! Accounting of one chat call: when it ends (answered, failed, or abandoned by the client)
//! it queues its usage event, settles its token reservation and writes one log line.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::limit::Reservation;
use super::usage::UsageRecorder;
use crate::services::llm::{ChatMessage, Usage, tokens};
use crate::store::UsageEvent;

/// How a call ended, as stored in `usage_events.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Error,
    Cancelled,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A prompt's size in tokens, as far as it was needed before the call.
pub enum PromptTokens {
    /// Counted before the call (the window or the token limit needed it).
    Counted(u32),
    /// Not counted: only a call that ends without the provider's usage counts it, at the end,
    /// from the request's messages (shared with the request, not copied) and the text of its
    /// tools and schema ([`tokens::definitions`], usually empty).
    Uncounted {
        messages: Arc<[ChatMessage]>,
        definitions: String,
    },
}

impl PromptTokens {
    fn count(&self, model: &str) -> u32 {
        match self {
            Self::Counted(count) => *count,
            Self::Uncounted {
                messages,
                definitions,
            } => tokens::count_prompt(model, messages, definitions),
        }
    }
}

pub struct CallAccount {
    recorder: Arc<UsageRecorder>,
    reservation: Option<Reservation>,
    user: Uuid,
    pub model: String,
    pub provider: &'static str,
    started: Instant,
    /// For calls that end without a provider report.
    prompt: PromptTokens,
    first_token: Option<Duration>,
    citations: usize,
}

impl CallAccount {
    #[expect(
        clippy::too_many_arguments,
        reason = "one plain constructor of a record"
    )]
    pub fn open(
        recorder: Arc<UsageRecorder>,
        reservation: Reservation,
        user: Uuid,
        model: String,
        provider: &'static str,
        started: Instant,
        prompt: PromptTokens,
        citations: usize,
    ) -> Self {
        Self {
            recorder,
            reservation: Some(reservation),
            user,
            model,
            provider,
            started,
            prompt,
            first_token: None,
            citations,
        }
    }

    /// The provider and model that actually answered (after fallback).
    pub fn answered_by(&mut self, provider: &'static str, model: String) {
        self.provider = provider;
        self.model = model;
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Notes a streamed token (the first one's time is the call's time to first token).
    pub fn token(&mut self) {
        if self.first_token.is_none() {
            self.first_token = Some(self.started.elapsed());
        }
    }

    /// Ends the call with its usage, the provider's report (or the gateway's count).
    /// Returns the usage recorded.
    pub fn finish(&mut self, outcome: Outcome, usage: Usage) -> Usage {
        let Some(reservation) = self.reservation.take() else {
            return usage;
        };
        reservation.settle(usage.total_tokens);
        let latency = self.started.elapsed();
        tracing::info!(
            user_id = %self.user,
            model = %self.model,
            provider = self.provider,
            outcome = outcome.as_str(),
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            citations = self.citations,
            latency_ms = millis(latency),
            ttft_ms = self.first_token.map(millis),
            "chat"
        );
        self.recorder.record(UsageEvent {
            id: Uuid::now_v7(),
            user_id: self.user,
            model: self.model.clone(),
            provider: self.provider.to_owned(),
            prompt_tokens: saturating_i32(usage.prompt_tokens),
            completion_tokens: saturating_i32(usage.completion_tokens),
            latency_ms: millis(latency),
            ttft_ms: self.first_token.map(millis),
            outcome: outcome.as_str().to_owned(),
            created_at: crate::store::now(),
        });
        usage
    }
}

impl Drop for CallAccount {
    /// A call dropped before it finished was abandoned: the client went away before the
    /// answer, so it is charged its prompt (a streamed answer's account is finished by its
    /// stream, with what it consumed).
    fn drop(&mut self) {
        if self.reservation.is_some() {
            let prompt = self.prompt.count(&self.model);
            self.finish(Outcome::Cancelled, Usage::new(prompt, 0));
        }
    }
}

fn saturating_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}
