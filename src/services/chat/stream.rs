//! A streamed chat as the routes see it: the citations up front, then tokens as the provider
//! sends them, then one summary or one error. Dropping the stream drops the upstream request
//! (the provider stops generating) and records the call as cancelled.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::{Stream, StreamExt};

use super::account::{CallAccount, Outcome};
use crate::services::llm::{
    FinishReason, MeteredStream, ProviderError, StreamEvent, ToolCallDelta, Usage,
};
use crate::services::retrieval::Citation;

/// What ends a successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    pub usage: Usage,
    /// Whether the answer ended or was cut at `max_tokens`.
    pub finish: FinishReason,
    /// The routable model name that answered.
    pub model: String,
    pub provider: &'static str,
    pub processing_time_ms: u64,
}

#[derive(Debug)]
pub enum ChatEvent {
    Token(String),
    /// A piece of a tool call.
    ToolCall(ToolCallDelta),
    /// A piece of the model's refusal of a structured answer.
    Refusal(String),
    /// The last event of a complete answer.
    Done(ChatSummary),
    /// The last event of an answer the provider broke off.
    Failed(ProviderError),
}

/// A chat being answered. `events` ends after `Done` or `Failed`.
pub struct ChatStream {
    pub citations: Vec<Citation>,
    pub model: String,
    pub provider: &'static str,
    /// ragd's own time until the first token: the whole wait minus the provider's.
    pub overhead: std::time::Duration,
    pub events: AnswerStream,
}

pub struct AnswerStream {
    /// The provider's events; it counts what a call that ends early consumed.
    upstream: MeteredStream,
    account: CallAccount,
    finished: bool,
}

impl AnswerStream {
    pub(super) fn new(upstream: MeteredStream, account: CallAccount) -> Self {
        Self {
            upstream,
            account,
            finished: false,
        }
    }
}

impl Stream for AnswerStream {
    type Item = ChatEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChatEvent>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let event = ready!(self.upstream.poll_next_unpin(cx));
        let this = &mut *self;
        let event = match event {
            Some(Ok(StreamEvent::Token(text))) => {
                this.account.token();
                return Poll::Ready(Some(ChatEvent::Token(text)));
            }
            Some(Ok(StreamEvent::Refusal(text))) => {
                this.account.token();
                return Poll::Ready(Some(ChatEvent::Refusal(text)));
            }
            Some(Ok(StreamEvent::ToolCall(delta))) => {
                this.account.token();
                return Poll::Ready(Some(ChatEvent::ToolCall(delta)));
            }
            Some(Ok(StreamEvent::Done { usage, finish })) => {
                let usage = usage.unwrap_or_else(|| this.upstream.usage_so_far());
                let usage = this.account.finish(Outcome::Success, usage);
                let elapsed = this.account.elapsed();
                ChatEvent::Done(ChatSummary {
                    usage,
                    finish,
                    model: this.account.model.clone(),
                    provider: this.account.provider,
                    processing_time_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                })
            }
            Some(Err(error)) => {
                this.account
                    .finish(Outcome::Error, this.upstream.usage_so_far());
                ChatEvent::Failed(error)
            }
            None => {
                let error = ProviderError::StreamCut {
                    provider: this.account.provider,
                };
                this.account
                    .finish(Outcome::Error, this.upstream.usage_so_far());
                ChatEvent::Failed(error)
            }
        };
        this.finished = true;
        Poll::Ready(Some(event))
    }
}

impl Drop for AnswerStream {
    /// An answer dropped before it ended was abandoned by the client: it is charged what it
    /// consumed until then (dropping the upstream afterwards cancels the request).
    fn drop(&mut self) {
        if !self.finished {
            let usage = self.upstream.cancel();
            self.account.finish(Outcome::Cancelled, usage);
        }
    }
}
