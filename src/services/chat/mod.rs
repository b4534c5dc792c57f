//! Chat: a conversation (optionally grounded in the caller's documents) answered through the
//! LLM gateway, whole or streamed, with token budgeting, per-user token limits and a usage
//! event per call.
//!
//! Routes (`/api/v1/chat*`, `/v1/chat/completions`) translate their wire shapes to
//! [`ChatParams`] and the results back; everything else happens here.

mod account;
mod budget;
mod grounding;
mod limit;
mod params;
mod prompt;
mod service;
mod stream;
mod usage;

pub use budget::{TooLong, context_window};
pub use grounding::{Grounding, GroundingError, Ungrounded};
pub use limit::TokenLimiter;
pub use params::{
    ChatParams, DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE, DEFAULT_TOP_K, MAX_CONTENT_CHARS,
    MAX_MESSAGES, MAX_OUTPUT_TOKENS, MAX_TEMPERATURE, MAX_TOP_K, OPENAI_LIMITS, RAGD_LIMITS,
    RagScope,
};
pub use service::{ChatAnswer, ChatError, ChatService};
pub use stream::{ChatEvent, ChatStream, ChatSummary};
pub use usage::UsageRecorder;

use std::num::NonZeroU32;
use std::sync::Arc;

use crate::cache::{Quota, RateLimiter};
use crate::config::Settings;
use crate::services::llm::LlmGateway;
use crate::store::Store;

/// The chat service the settings describe: `TOKEN_LIMIT_PER_MINUTE` enforced through the
/// application's limiter (Redis when `REDIS_URL` is set, so exact across replicas; else in
/// memory); `LOG_PROMPTS` honoured.
pub fn from_settings(
    settings: &Settings,
    llm: Arc<LlmGateway>,
    store: Arc<dyn Store>,
    limiter: Arc<dyn RateLimiter>,
) -> ChatService {
    let tokens = settings
        .token_limit_per_minute
        .and_then(NonZeroU32::new)
        .map(|per_minute| {
            TokenLimiter::new(limiter, Quota { per_minute }, settings.rate_limit_fail_open)
        });
    let usage = Arc::new(UsageRecorder::spawn(store));
    ChatService::new(llm, usage, tokens, settings.log_prompts)
}
