//! [`ChatService`]: validates, grounds, budgets, limits, then answers through the gateway.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::account::{CallAccount, Outcome};
use super::budget::{self, TooLong};
use super::grounding::{Grounding, GroundingError, Ungrounded};
use super::limit::{Refused, Reservation, TokenLimiter};
use super::params::ChatParams;
use super::prompt::grounded;
use super::stream::{AnswerStream, ChatStream};
use super::usage::UsageRecorder;
use crate::http::error::FieldError;
use crate::services::llm::{CompletionRequest, LlmGateway, ProviderError, Usage};
use crate::services::retrieval::Citation;

/// Why a chat was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error(
        "the conversation needs {} tokens plus max_tokens {}, more than the model's context window of {}; shorten it or lower max_tokens",
        .0.prompt_tokens, .0.max_tokens, .0.window
    )]
    ContextTooLong(TooLong),
    #[error("token limit of {limit} per minute reached")]
    TokenLimit {
        limit: u32,
        retry_after: Option<Duration>,
    },
    #[error("the token limiter is unavailable, try again")]
    LimiterUnavailable,
    #[error(transparent)]
    Grounding(#[from] GroundingError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    pub text: String,
    pub citations: Vec<Citation>,
    pub usage: Usage,
    /// The routable model name that answered (a fallback model when the asked one failed).
    pub model: String,
    pub provider: &'static str,
    pub processing_time_ms: u64,
}

pub struct ChatService {
    llm: Arc<LlmGateway>,
    grounding: Arc<dyn Grounding>,
    usage: Arc<UsageRecorder>,
    tokens: Option<TokenLimiter>,
    log_prompts: bool,
}

/// A request ready for the provider, with its evidence and accounting.
struct Prepared {
    model: String,
    request: CompletionRequest,
    citations: Vec<Citation>,
    account: CallAccount,
}

impl ChatService {
    /// A service without retrieval (see [`ChatService::with_grounding`]).
    pub fn new(
        llm: Arc<LlmGateway>,
        usage: Arc<UsageRecorder>,
        tokens: Option<TokenLimiter>,
        log_prompts: bool,
    ) -> Self {
        Self {
            llm,
            grounding: Arc::new(Ungrounded),
            usage,
            tokens,
            log_prompts,
        }
    }

    /// Plugs in where citations come from: the retrieval service.
    pub fn with_grounding(mut self, grounding: Arc<dyn Grounding>) -> Self {
        self.grounding = grounding;
        self
    }

    /// The writer of usage events, to flush on shutdown.
    pub fn usage(&self) -> &UsageRecorder {
        &self.usage
    }

    /// Answers in one piece.
    pub async fn complete(&self, user: Uuid, params: ChatParams) -> Result<ChatAnswer, ChatError> {
        let Prepared {
            model,
            request,
            citations,
            mut account,
        } = self.prepare(user, params).await?;
        match self.llm.complete(&model, &request).await {
            Ok(routed) => {
                account.answered_by(routed.provider, routed.model.clone());
                let usage = account.finish(Outcome::Success, Some(routed.value.usage));
                Ok(ChatAnswer {
                    text: routed.value.text,
                    citations,
                    usage,
                    model: routed.model,
                    provider: routed.provider,
                    processing_time_ms: millis(account.elapsed()),
                })
            }
            Err(error) => {
                fail(&mut account, &error);
                Err(error.into())
            }
        }
    }

    /// Answers token by token. Errors before the first token are returned here (and were
    /// already retried and failed over); later ones arrive as [`super::ChatEvent::Failed`].
    pub async fn stream(&self, user: Uuid, params: ChatParams) -> Result<ChatStream, ChatError> {
        let Prepared {
            model,
            request,
            citations,
            mut account,
        } = self.prepare(user, params).await?;
        match self.llm.stream(&model, &request).await {
            Ok(routed) => {
                account.answered_by(routed.provider, routed.model.clone());
                Ok(ChatStream {
                    citations,
                    model: routed.model,
                    provider: routed.provider,
                    events: AnswerStream::new(routed.value, account),
                })
            }
            Err(error) => {
                fail(&mut account, &error);
                Err(error.into())
            }
        }
    }

    async fn prepare(&self, user: Uuid, params: ChatParams) -> Result<Prepared, ChatError> {
        let started = Instant::now();
        let problems = params.problems();
        if !problems.is_empty() {
            return Err(ChatError::Invalid(problems));
        }
        let model = params
            .model
            .clone()
            .unwrap_or_else(|| self.llm.default_model().to_owned());
        let mut citations = match &params.rag {
            Some(scope) => {
                self.grounding
                    .ground(user, params.question(), scope)
                    .await?
            }
            None => Vec::new(),
        };
        let (kept, prompt_tokens) = budget::fit(&model, params.max_tokens, &citations, |kept| {
            grounded(&params.messages, kept).0
        })
        .map_err(ChatError::ContextTooLong)?;
        citations.truncate(kept);
        let (messages, context) = grounded(&params.messages, &citations);
        let reservation = self
            .reserve(user, prompt_tokens.saturating_add(params.max_tokens))
            .await?;
        if self.log_prompts {
            let prompt = serde_json::to_string(&messages).unwrap_or_default();
            tracing::info!(user_id = %user, model = %model, prompt = %prompt, "chat prompt");
        }
        let account = CallAccount::open(
            self.usage.clone(),
            reservation,
            user,
            model.clone(),
            crate::services::llm::provider_of(&model),
            started,
            prompt_tokens,
            citations.len(),
        );
        Ok(Prepared {
            request: CompletionRequest {
                model: model.clone(),
                messages,
                temperature: params.temperature,
                max_tokens: params.max_tokens,
                context,
            },
            model,
            citations,
            account,
        })
    }

    async fn reserve(&self, user: Uuid, cost: u32) -> Result<Reservation, ChatError> {
        let Some(tokens) = &self.tokens else {
            return Ok(Reservation::unlimited());
        };
        tokens
            .reserve(user, cost)
            .await
            .map_err(|refused| match refused {
                Refused::OverLimit { limit, retry_after } => {
                    ChatError::TokenLimit { limit, retry_after }
                }
                Refused::Unavailable => ChatError::LimiterUnavailable,
            })
    }
}

/// Records a call that got no answer at all.
fn fail(account: &mut CallAccount, error: &ProviderError) {
    if let Some(provider) = error.provider() {
        account.answered_by(provider, account.model.clone());
    }
    account.finish(Outcome::Error, Some(Usage::default()));
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
