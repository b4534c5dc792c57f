//! [`ProviderError`]: every way a call to an LLM provider can fail, with enough detail for
//! the HTTP layer to choose a status and for metrics to count by kind.

use std::time::Duration;

use thiserror::Error;

/// A failed provider call. Messages never contain secrets or raw upstream bodies: `message`
/// fields hold a short, sanitized summary.
#[derive(Debug, Error)]
pub enum ProviderError {
    /// No provider can serve this model (no key or URL configured). HTTP 503.
    #[error("no LLM provider is configured for model `{model}`: {hint}")]
    NotConfigured { model: String, hint: &'static str },

    /// The provider did not answer (or stopped sending) within the configured time. HTTP 504.
    #[error("{provider} did not answer in time")]
    Timeout { provider: &'static str },

    /// The provider answered with an error. HTTP 502.
    #[error("{provider} answered with status {status}: {message}")]
    Upstream {
        provider: &'static str,
        status: u16,
        message: String,
    },

    /// The provider refused because of its own rate limit, and asked to wait longer than
    /// ragd is willing to wait (or retries ran out).
    #[error("{provider} is rate limiting requests")]
    RateLimited {
        provider: &'static str,
        retry_after: Option<Duration>,
    },

    /// The provider could not be reached at all.
    #[error("could not connect to {provider}: {message}")]
    Connect {
        provider: &'static str,
        message: String,
    },

    /// The provider answered something that is not its documented wire format.
    #[error("{provider} sent a malformed response: {message}")]
    Protocol {
        provider: &'static str,
        message: String,
    },

    /// The stream ended (connection closed or broken) before the provider said it was done.
    #[error("{provider} ended the stream before the answer was complete")]
    StreamCut { provider: &'static str },

    /// The provider does not offer this operation (e.g. embeddings from Anthropic).
    #[error("{provider} does not support {operation}")]
    Unsupported {
        provider: &'static str,
        operation: &'static str,
    },
}

impl ProviderError {
    /// A stable snake_case name, used as the `kind` label of `llm_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotConfigured { .. } => "not_configured",
            Self::Timeout { .. } => "timeout",
            Self::Upstream { .. } => "upstream",
            Self::RateLimited { .. } => "rate_limited",
            Self::Connect { .. } => "connect",
            Self::Protocol { .. } => "protocol",
            Self::StreamCut { .. } => "stream_cut",
            Self::Unsupported { .. } => "unsupported",
        }
    }

    /// Whether sending the same request again may succeed: the provider was unreachable,
    /// overloaded or failed internally. Timeouts are not retried because they already
    /// consumed the time budget.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::RateLimited { .. } => true,
            Self::Upstream { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The provider that failed, when one was reached.
    pub fn provider(&self) -> Option<&'static str> {
        match self {
            Self::NotConfigured { .. } => None,
            Self::Timeout { provider }
            | Self::Upstream { provider, .. }
            | Self::RateLimited { provider, .. }
            | Self::Connect { provider, .. }
            | Self::Protocol { provider, .. }
            | Self::StreamCut { provider }
            | Self::Unsupported { provider, .. } => Some(provider),
        }
    }
}
