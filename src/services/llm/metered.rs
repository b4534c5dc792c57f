//! The stream the gateway hands out: it fills in usage the provider did not report, records
//! the call's metrics when the stream ends, fails or is dropped, and counts what a call that
//! ended early consumed (once, for its metrics and for the chat's account alike).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::{Stream, StreamExt};
use tokio::time::Instant;

use super::metrics::CallMetrics;
use super::{CompletionRequest, EventStream, ProviderError, StreamEvent, Usage};

pub struct MeteredStream {
    inner: EventStream,
    provider: &'static str,
    metrics: CallMetrics,
    /// Kept to count prompt tokens when the provider reports no usage.
    request: Arc<CompletionRequest>,
    /// What the model wrote so far: its text and its tool calls' names and arguments.
    answer: String,
    /// The usage counted locally, once it was needed.
    counted: Option<Usage>,
    first_token_at: Option<Instant>,
    /// An event already read, returned before the next one is polled (see [`Self::replay`]).
    replayed: Option<StreamEvent>,
    finished: bool,
}

impl MeteredStream {
    pub fn new(
        inner: EventStream,
        provider: &'static str,
        metrics: CallMetrics,
        request: Arc<CompletionRequest>,
    ) -> Self {
        Self {
            inner,
            provider,
            metrics,
            request,
            answer: String::new(),
            counted: None,
            first_token_at: None,
            replayed: None,
            finished: false,
        }
    }

    /// Returns `event`, already read from this stream, again before the next one: the gateway
    /// reads the first event itself, to fall back on a failure, before handing the stream on.
    pub fn replay(&mut self, event: StreamEvent) {
        self.replayed = Some(event);
    }

    /// The prompt and the answer so far, counted with the model's tokenizer (once: later calls
    /// return the same count). For a call that ended without the provider's usage report.
    pub fn usage_so_far(&mut self) -> Usage {
        *self
            .counted
            .get_or_insert_with(|| self.request.estimate_usage(&self.answer))
    }

    /// Counts the tokens of an answer that ended early into the metrics, once it had begun:
    /// the provider was generating, and bills for the prompt and what it wrote until then.
    fn count_partial_answer(&mut self) {
        if self.first_token_at.is_some() {
            let usage = self.usage_so_far();
            self.metrics.tokens(usage);
        }
    }

    /// The caller gives up on the answer: records the call as cancelled and returns what it
    /// consumed until now.
    pub fn cancel(&mut self) -> Usage {
        if !self.finished {
            self.finished = true;
            self.metrics.cancelled();
            self.count_partial_answer();
        }
        self.usage_so_far()
    }

    /// Ends the call with an error decided outside the stream (e.g. time to first token).
    pub fn fail(mut self, error: &ProviderError) {
        self.finished = true;
        self.metrics.failure(error);
    }

    fn generating(&mut self) {
        if self.first_token_at.is_none() {
            self.metrics.first_token();
            self.first_token_at = Some(Instant::now());
        }
    }

    fn observe(
        &mut self,
        event: Option<Result<StreamEvent, ProviderError>>,
    ) -> Option<Result<StreamEvent, ProviderError>> {
        let event = event.unwrap_or(Err(ProviderError::StreamCut {
            provider: self.provider,
        }));
        match event {
            Ok(StreamEvent::Token(text)) => {
                self.generating();
                self.answer.push_str(&text);
                Some(Ok(StreamEvent::Token(text)))
            }
            Ok(StreamEvent::Refusal(text)) => {
                self.generating();
                self.answer.push_str(&text);
                Some(Ok(StreamEvent::Refusal(text)))
            }
            Ok(StreamEvent::ToolCall(delta)) => {
                self.generating();
                if let Some(name) = &delta.name {
                    self.answer.push_str(name);
                }
                self.answer.push_str(&delta.arguments);
                Some(Ok(StreamEvent::ToolCall(delta)))
            }
            Ok(StreamEvent::Done { usage, finish }) => {
                self.finished = true;
                let usage = usage.unwrap_or_else(|| self.usage_so_far());
                let generation = self
                    .first_token_at
                    .map_or_else(|| self.metrics.elapsed(), |at| at.elapsed());
                self.metrics.success(usage, generation);
                Some(Ok(StreamEvent::Done {
                    usage: Some(usage),
                    finish,
                }))
            }
            Err(error) => {
                self.finished = true;
                self.metrics.failure(&error);
                self.count_partial_answer();
                Some(Err(error))
            }
        }
    }
}

impl Stream for MeteredStream {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(event) = self.replayed.take() {
            return Poll::Ready(Some(Ok(event)));
        }
        if self.finished {
            return Poll::Ready(None);
        }
        let event = ready!(self.inner.poll_next_unpin(cx));
        Poll::Ready(self.observe(event))
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        if !self.finished {
            self.metrics.cancelled();
            self.count_partial_answer();
        }
    }
}
