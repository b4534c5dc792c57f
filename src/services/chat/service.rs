//! [`ChatService`]: validates, grounds, budgets, limits, then answers through the gateway.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::account::{CallAccount, Outcome, PromptTokens};
use super::budget::{self, TooLong};
use super::grounding::{Grounding, GroundingError, Ungrounded};
use super::limit::{Refused, Reservation, TokenLimiter};
use super::params::ChatParams;
use super::prompt::{Grounded, grounded};
use super::stream::{AnswerStream, ChatStream};
use super::usage::UsageRecorder;
use crate::http::error::FieldError;
use crate::services::llm::{
    ChatMessage, CompletionRequest, FinishReason, LlmGateway, ProviderError, Routed, ToolCall,
    Usage, tokens,
};
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
    /// No provider answered; `overhead` is ragd's own time until then, reported like a
    /// successful answer's (`x-ragd-overhead-ms`).
    #[error("{error}")]
    Provider {
        error: ProviderError,
        overhead: Duration,
    },
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    pub text: String,
    /// The tools the model called (it then waits for their results).
    pub tool_calls: Vec<ToolCall>,
    /// Why the model declined a structured answer.
    pub refusal: Option<String>,
    pub citations: Vec<Citation>,
    pub usage: Usage,
    /// Whether the answer ended or was cut at `max_tokens`.
    pub finish: FinishReason,
    /// The routable model name that answered (a fallback model when the asked one failed).
    pub model: String,
    pub provider: &'static str,
    pub processing_time_ms: u64,
    /// ragd's own time: the whole call minus the time spent waiting on the provider.
    pub overhead: Duration,
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

/// A call a provider answered, before its answer is read.
struct Answered<T> {
    routed: Routed<T>,
    citations: Vec<Citation>,
    account: CallAccount,
    /// Time spent waiting on the provider.
    upstream: Duration,
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
        let Answered {
            routed,
            citations,
            mut account,
            upstream,
        } = self
            .answer(user, params, |llm, model, request| async move {
                llm.complete(&model, &request).await
            })
            .await?;
        let usage = account.finish(Outcome::Success, routed.value.usage);
        Ok(ChatAnswer {
            overhead: overhead(account.elapsed(), upstream),
            text: routed.value.text,
            tool_calls: routed.value.tool_calls,
            refusal: routed.value.refusal,
            finish: routed.value.finish,
            citations,
            usage,
            model: routed.model,
            provider: routed.provider,
            processing_time_ms: millis(account.elapsed()),
        })
    }

    /// Answers token by token. Errors before the first token are returned here (and were
    /// already retried and failed over); later ones arrive as [`super::ChatEvent::Failed`].
    pub async fn stream(&self, user: Uuid, params: ChatParams) -> Result<ChatStream, ChatError> {
        let Answered {
            routed,
            citations,
            account,
            upstream,
        } = self
            .answer(user, params, |llm, model, request| async move {
                llm.stream(&model, &request).await
            })
            .await?;
        Ok(ChatStream {
            overhead: overhead(account.elapsed(), upstream),
            citations,
            model: routed.model,
            provider: routed.provider,
            events: AnswerStream::new(routed.value, account),
        })
    }

    /// Prepares the call and makes it with `call` (whole or streamed), timing the wait on the
    /// provider. A call no provider answered is accounted for
    /// here.
    async fn answer<T, F, Fut>(
        &self,
        user: Uuid,
        params: ChatParams,
        call: F,
    ) -> Result<Answered<T>, ChatError>
    where
        F: FnOnce(Arc<LlmGateway>, String, CompletionRequest) -> Fut,
        Fut: Future<Output = Result<Routed<T>, ProviderError>>,
    {
        let Prepared {
            model,
            request,
            citations,
            mut account,
        } = self.prepare(user, params).await?;
        let waiting = Instant::now();
        let outcome = call(self.llm.clone(), model, request).await;
        let upstream = waiting.elapsed();
        match outcome {
            Ok(routed) => {
                account.answered_by(routed.provider, routed.model.clone());
                Ok(Answered {
                    routed,
                    citations,
                    account,
                    upstream,
                })
            }
            Err(error) => {
                fail(&mut account, &error);
                Err(ChatError::Provider {
                    error,
                    overhead: overhead(account.elapsed(), upstream),
                })
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
                    .ground(user, &params.question(), scope)
                    .await?
            }
            None => Vec::new(),
        };
        let definitions = tokens::definitions(
            params.options.tools.as_deref(),
            &params.options.response_format,
        );
        let fitted = budget::fit(
            &model,
            params.max_tokens,
            &definitions,
            &citations,
            |kept| grounded(&params.messages, kept),
        )
        .map_err(ChatError::ContextTooLong)?;
        citations.truncate(fitted.kept);
        let counted = fitted.tokens;
        let Grounded { messages, context } = fitted.prompt;
        let messages: Arc<[ChatMessage]> = messages.into();
        // The token limit reserves the exact worst case, so it needs the count; otherwise it
        // is left to the end of a call the provider reports no usage for.
        let prompt = match (counted, &self.tokens) {
            (Some(count), _) => PromptTokens::Counted(count),
            (None, Some(_)) => {
                PromptTokens::Counted(tokens::count_prompt(&model, &messages, &definitions))
            }
            (None, None) => PromptTokens::Uncounted {
                messages: messages.clone(),
                definitions,
            },
        };
        let reservation = match &prompt {
            PromptTokens::Counted(count) => {
                self.reserve(user, count.saturating_add(params.max_tokens))
                    .await?
            }
            PromptTokens::Uncounted { .. } => Reservation::unlimited(),
        };
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
            prompt,
            citations.len(),
        );
        Ok(Prepared {
            request: CompletionRequest {
                model: model.clone(),
                messages,
                temperature: params.temperature,
                max_tokens: params.max_tokens,
                context,
                options: params.options,
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
    account.finish(Outcome::Error, Usage::default());
}

/// ragd's share of a call's time so far, also recorded in `ragd_overhead_seconds`.
fn overhead(total: Duration, upstream: Duration) -> Duration {
    let own = total.saturating_sub(upstream);
    metrics::histogram!("ragd_overhead_seconds").record(own.as_secs_f64());
    own
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use async_trait::async_trait;
    use futures::StreamExt;

    use super::*;
    use crate::services::chat::{ChatEvent, RAGD_LIMITS, RagScope};
    use crate::services::llm::{ChatMessage, LOCAL_MODEL, LlmSettings, Role};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{NewUser, Store};

    /// Evidence as the retrieval service would hand it over.
    struct Found(Vec<Citation>);

    #[async_trait]
    impl Grounding for Found {
        async fn ground(
            &self,
            _user: Uuid,
            _question: &str,
            scope: &RagScope,
        ) -> Result<Vec<Citation>, GroundingError> {
            let top_k = usize::try_from(scope.top_k).unwrap();
            Ok(self.0.iter().take(top_k).cloned().collect())
        }
    }

    fn citation(filename: &str, text: &str) -> Citation {
        Citation {
            document_id: Uuid::now_v7(),
            filename: filename.into(),
            chunk_index: 0,
            text: text.into(),
            score: 0.9,
            page: None,
            char_start: 0,
            char_end: 10,
        }
    }

    async fn service(dir: &tempfile::TempDir) -> (ChatService, Uuid) {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("chat.db"), 2)
                .await
                .unwrap(),
        );
        let user = store
            .create_user(NewUser::for_tests("ada@example.com"))
            .await
            .unwrap();
        let gateway = LlmGateway::new(LlmSettings {
            openai_api_key: None,
            openai_base_url: "https://api.openai.com/v1".into(),
            ollama_base_url: None,
            anthropic_api_key: None,
            anthropic_base_url: "https://api.anthropic.com".into(),
            default_model: None,
            fallback_models: Vec::new(),
            timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            ttft_timeout: None,
            max_retries: 0,
        })
        .unwrap();
        let sources = vec![
            citation(
                "paris.md",
                "The Eiffel Tower is 330 metres tall. It opened in 1889.",
            ),
            citation("rome.md", "The Colosseum held about 50,000 spectators."),
        ];
        let chat = ChatService::new(
            Arc::new(gateway),
            Arc::new(UsageRecorder::spawn(store)),
            None,
            false,
        )
        .with_grounding(Arc::new(Found(sources)));
        (chat, user.id)
    }

    fn ask(question: &str, rag: bool) -> ChatParams {
        ChatParams {
            messages: vec![ChatMessage::new(Role::User, question)],
            model: None,
            temperature: Some(0.7),
            max_tokens: 256,
            rag: rag.then(|| RagScope {
                document_ids: Vec::new(),
                top_k: 5,
            }),
            options: Default::default(),
            limits: &RAGD_LIMITS,
        }
    }

    #[tokio::test]
    async fn the_offline_provider_answers_from_the_grounding_with_numbered_citations() {
        let dir = tempfile::tempdir().unwrap();
        let (chat, user) = service(&dir).await;

        let answer = chat
            .complete(user, ask("How tall is the Eiffel Tower?", true))
            .await
            .unwrap();

        assert_eq!(answer.model, LOCAL_MODEL);
        assert_eq!(answer.citations.len(), 2);
        assert_eq!(answer.citations[0].filename, "paris.md");
        assert!(
            answer
                .text
                .contains("\"The Eiffel Tower is 330 metres tall.\" [1]"),
            "{}",
            answer.text
        );
    }

    #[tokio::test]
    async fn a_stream_hands_over_its_citations_before_any_token() {
        let dir = tempfile::tempdir().unwrap();
        let (chat, user) = service(&dir).await;

        let stream = chat
            .stream(
                user,
                ask("How many spectators did the Colosseum hold?", true),
            )
            .await
            .unwrap();

        assert_eq!(stream.citations.len(), 2);
        let events: Vec<ChatEvent> = stream.events.collect().await;
        let text: String = events
            .iter()
            .filter_map(|event| match event {
                ChatEvent::Token(token) => Some(token.as_str()),
                _ => None,
            })
            .collect();
        assert!(text.contains("[2]"), "{text}");
        assert!(matches!(events.last(), Some(ChatEvent::Done(_))));
        chat.usage().flush().await;
    }

    #[tokio::test]
    async fn without_rag_the_grounding_is_not_consulted() {
        let dir = tempfile::tempdir().unwrap();
        let (chat, user) = service(&dir).await;

        let answer = chat
            .complete(user, ask("How tall is the Eiffel Tower?", false))
            .await
            .unwrap();

        assert!(answer.citations.is_empty());
        assert!(answer.text.contains("no documents"), "{}", answer.text);
    }
}
