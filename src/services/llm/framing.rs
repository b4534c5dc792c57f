//! Framing of streamed bodies: bytes into lines (Ollama's NDJSON), lines into server-sent
//! events (OpenAI and Anthropic), and provider frames into [`StreamEvent`]s with the
//! end-of-stream rules every provider shares.
//!
//! Each is a plain [`Stream`] over the one before it, not an `unfold` of async blocks: every
//! token of every streamed answer passes through all of them, and a line is read in place in
//! the body's buffer instead of being copied into a string of its own.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use super::{EventStream, FinishReason, ProviderError, StreamEvent, ToolCallDelta, Usage};

/// Longest line, and longest event's data, accepted from a provider; a longer one means a
/// broken or hostile upstream.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A body read line by line, each line borrowed from the buffer until the next is read.
struct LineReader {
    provider: &'static str,
    chunks: BoxStream<'static, Result<Bytes, ProviderError>>,
    buffer: BytesMut,
    /// Bytes at the start of `buffer` already searched for a newline.
    searched: usize,
    /// Bytes at the start of `buffer` of the line handed out last, dropped on the next read.
    handed_out: usize,
    finished: bool,
}

impl LineReader {
    fn new(
        provider: &'static str,
        chunks: impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
    ) -> Self {
        Self {
            provider,
            chunks: chunks.boxed(),
            buffer: BytesMut::new(),
            searched: 0,
            handed_out: 0,
            finished: false,
        }
    }

    /// The next UTF-8 line without its `\n` / `\r\n`. A last line without a newline is still
    /// a line; an error from the body passes through and ends the lines.
    fn poll_line(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<&str, ProviderError>>> {
        self.buffer.advance(std::mem::take(&mut self.handed_out));
        loop {
            if let Some(offset) = memchr::memchr(b'\n', &self.buffer[self.searched..]) {
                let end = self.searched + offset;
                (self.handed_out, self.searched) = (end + 1, 0);
                return Poll::Ready(Some(decode_line(self.provider, &self.buffer[..end])));
            }
            self.searched = self.buffer.len();
            if self.finished {
                if self.buffer.is_empty() {
                    return Poll::Ready(None);
                }
                (self.handed_out, self.searched) = (self.buffer.len(), 0);
                return Poll::Ready(Some(decode_line(self.provider, &self.buffer)));
            }
            if self.buffer.len() > MAX_LINE_BYTES {
                self.end();
                return Poll::Ready(Some(Err(ProviderError::Protocol {
                    provider: self.provider,
                    message: format!("stream line longer than {MAX_LINE_BYTES} bytes"),
                })));
            }
            match ready!(self.chunks.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => self.buffer.extend_from_slice(&chunk),
                Some(Err(error)) => {
                    self.end();
                    return Poll::Ready(Some(Err(error)));
                }
                None => self.finished = true,
            }
        }
    }

    /// No more lines: what is buffered is dropped.
    fn end(&mut self) {
        self.finished = true;
        self.buffer = BytesMut::new();
        (self.searched, self.handed_out) = (0, 0);
    }
}

fn decode_line<'a>(provider: &'static str, raw: &'a [u8]) -> Result<&'a str, ProviderError> {
    let text = std::str::from_utf8(raw).map_err(|_| ProviderError::Protocol {
        provider,
        message: "stream line is not UTF-8".to_owned(),
    })?;
    Ok(text.strip_suffix('\r').unwrap_or(text))
}

/// A body's lines, each its own string (Ollama's NDJSON).
pub struct Lines(LineReader);

/// Splits a byte stream into UTF-8 lines without their `\n` / `\r\n`. A last line without a
/// newline is still yielded; errors from the byte stream pass through and end the stream.
pub fn lines(
    provider: &'static str,
    chunks: impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
) -> Lines {
    Lines(LineReader::new(provider, chunks))
}

impl Stream for Lines {
    type Item = Result<String, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let line = ready!(self.0.poll_line(cx));
        Poll::Ready(line.map(|line| line.map(str::to_owned)))
    }
}

/// One server-sent event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// A body's server-sent events.
pub struct SseEvents {
    lines: LineReader,
    /// The event being read: its name and data so far.
    event: Option<String>,
    data: Option<String>,
}

/// Groups a byte stream's lines into server-sent events (a blank line ends an event; comments
/// and other fields are ignored), per the WHATWG event-stream format. Errors from the byte
/// stream pass through and end the events.
pub fn sse_events(
    provider: &'static str,
    chunks: impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
) -> SseEvents {
    SseEvents {
        lines: LineReader::new(provider, chunks),
        event: None,
        data: None,
    }
}

impl Stream for SseEvents {
    type Item = Result<SseEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let line = match ready!(this.lines.poll_line(cx)) {
                Some(Ok(line)) => line,
                Some(Err(error)) => {
                    (this.event, this.data) = (None, None);
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    let event = this.event.take();
                    let last = this.data.take().map(|data| Ok(SseEvent { event, data }));
                    return Poll::Ready(last);
                }
            };
            if line.is_empty() {
                if let Some(data) = this.data.take() {
                    let event = this.event.take();
                    return Poll::Ready(Some(Ok(SseEvent { event, data })));
                }
                this.event = None;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => this.event = Some(value.to_owned()),
                "data" => {
                    let joined = match this.data.as_mut() {
                        Some(joined) => {
                            joined.push('\n');
                            joined.push_str(value);
                            joined
                        }
                        None => this.data.insert(value.to_owned()),
                    };
                    if joined.len() > MAX_LINE_BYTES {
                        let provider = this.lines.provider;
                        this.lines.end();
                        (this.event, this.data) = (None, None);
                        return Poll::Ready(Some(Err(ProviderError::Protocol {
                            provider,
                            message: format!("stream event longer than {MAX_LINE_BYTES} bytes"),
                        })));
                    }
                }
                _ => {}
            }
        }
    }
}

/// What one provider frame means for the caller.
pub enum Frame {
    Token(String),
    ToolCall(ToolCallDelta),
    /// Several events from one frame (text and tool calls together, several calls), in
    /// order; a `Done` among them ends the stream.
    Events(Vec<StreamEvent>),
    /// Nothing for the caller (role announcements, pings, usage-only chunks).
    Ignore,
    /// The provider finished, reporting this usage (if it reported any) and why it stopped.
    Done(Option<Usage>, FinishReason),
}

/// Turns a provider's frames into stream events with `decode`. The stream ends after the
/// first `Done` or error; frames that end without a `Done` mean the answer was cut.
pub fn decode_events<S, F, D>(provider: &'static str, frames: S, mut decode: D) -> EventStream
where
    S: Stream<Item = Result<F, ProviderError>> + Unpin + Send + 'static,
    F: 'static,
    D: FnMut(F) -> Result<Frame, ProviderError> + Unpin + Send + 'static,
{
    decode_events_to_end(frames, move |frame| match frame {
        Some(frame) => decode(frame),
        None => Err(ProviderError::StreamCut { provider }),
    })
}

/// Like [`decode_events`], but `decode` also decides what frames ending without a `Done`
/// mean: it is called with `None` then.
pub fn decode_events_to_end<S, F, D>(frames: S, decode: D) -> EventStream
where
    S: Stream<Item = Result<F, ProviderError>> + Unpin + Send + 'static,
    D: FnMut(Option<F>) -> Result<Frame, ProviderError> + Unpin + Send + 'static,
{
    DecodeEvents {
        frames,
        decode,
        pending: VecDeque::new(),
        ended: false,
    }
    .boxed()
}

struct DecodeEvents<S, D> {
    frames: S,
    decode: D,
    /// Events of a frame that held several, handed out before the next frame is read.
    pending: VecDeque<StreamEvent>,
    ended: bool,
}

impl<S, D> DecodeEvents<S, D> {
    /// The next event of a frame that held several; after a `Done`, none.
    fn next_pending(&mut self) -> Option<StreamEvent> {
        let event = self.pending.pop_front()?;
        if matches!(event, StreamEvent::Done { .. }) {
            self.ended = true;
            self.pending.clear();
        }
        Some(event)
    }
}

impl<S, F, D> Stream for DecodeEvents<S, D>
where
    S: Stream<Item = Result<F, ProviderError>> + Unpin,
    D: FnMut(Option<F>) -> Result<Frame, ProviderError> + Unpin,
{
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(event) = this.next_pending() {
            return Poll::Ready(Some(Ok(event)));
        }
        while !this.ended {
            let decoded = match ready!(this.frames.poll_next_unpin(cx)) {
                None => (this.decode)(None),
                Some(Err(error)) => Err(error),
                Some(Ok(frame)) => (this.decode)(Some(frame)),
            };
            let event = match decoded {
                Ok(Frame::Ignore) => continue,
                Ok(Frame::Token(text)) => return Poll::Ready(Some(Ok(StreamEvent::Token(text)))),
                Ok(Frame::ToolCall(delta)) => {
                    return Poll::Ready(Some(Ok(StreamEvent::ToolCall(delta))));
                }
                Ok(Frame::Events(events)) => {
                    this.pending = events.into();
                    match this.next_pending() {
                        Some(event) => return Poll::Ready(Some(Ok(event))),
                        None => continue,
                    }
                }
                Ok(Frame::Done(usage, finish)) => Ok(StreamEvent::Done { usage, finish }),
                Err(error) => Err(error),
            };
            this.ended = true;
            return Poll::Ready(Some(event));
        }
        Poll::Ready(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static str]) -> BoxStream<'static, Result<Bytes, ProviderError>> {
        let parts: Vec<_> = parts
            .iter()
            .map(|part| Ok(Bytes::from_static(part.as_bytes())))
            .collect();
        futures::stream::iter(parts).boxed()
    }

    #[tokio::test]
    async fn a_frame_of_several_events_hands_them_out_in_order_and_ends_at_its_done() {
        let frames = futures::stream::iter([Ok::<_, ProviderError>(1), Ok(2)]);
        let events: Vec<_> = decode_events("p", frames, |frame| {
            Ok(match frame {
                1 => Frame::Events(vec![
                    StreamEvent::Token("a".into()),
                    StreamEvent::Done {
                        usage: None,
                        finish: FinishReason::Stop,
                    },
                    StreamEvent::Token("after the end".into()),
                ]),
                _ => Frame::Token("never read".into()),
            })
        })
        .map(Result::unwrap)
        .collect()
        .await;
        assert_eq!(
            events,
            [
                StreamEvent::Token("a".into()),
                StreamEvent::Done {
                    usage: None,
                    finish: FinishReason::Stop
                }
            ]
        );
    }

    #[tokio::test]
    async fn lines_are_reassembled_across_chunks() {
        let collected: Vec<String> = lines("p", chunks(&["{\"a\":", "1}\r\n{\"b\"", ":2}\nlast"]))
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(collected, ["{\"a\":1}", "{\"b\":2}", "last"]);
    }

    #[tokio::test]
    async fn sse_events_join_data_lines_and_skip_comments() {
        let input = chunks(&[
            ": keep-alive\n\nevent: message_start\ndata: {\"x\":",
            "1}\n\ndata: a\ndata: b\n\ndata: [DONE]\n\n",
        ]);
        let events: Vec<SseEvent> = sse_events("p", input).map(Result::unwrap).collect().await;
        assert_eq!(
            events,
            [
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"x\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "a\nb".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[tokio::test]
    async fn sse_events_accept_crlf_lines_split_anywhere() {
        let input = chunks(&["data: {\"a\"", ":1}\r", "\n\r\nda", "ta: 2\r\n", "\r\n"]);
        let data: Vec<String> = sse_events("p", input)
            .map(|event| event.unwrap().data)
            .collect()
            .await;
        assert_eq!(data, ["{\"a\":1}", "2"]);
    }

    #[tokio::test]
    async fn a_broken_body_ends_the_events_with_its_error() {
        let parts = vec![
            Ok(Bytes::from_static(b"data: 1\n\ndata: half")),
            Err(ProviderError::StreamCut { provider: "p" }),
            Ok(Bytes::from_static(b"\n\ndata: after\n\n")),
        ];
        let events: Vec<_> = sse_events("p", futures::stream::iter(parts))
            .collect()
            .await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].as_ref().unwrap().data, "1");
        assert!(matches!(events[1], Err(ProviderError::StreamCut { .. })));
    }

    #[tokio::test]
    async fn an_endless_event_is_a_protocol_error_and_the_end() {
        // Short `data:` lines, never a blank line to end the event.
        let line = format!("data: {}\n", "x".repeat(1000));
        let parts = vec![Ok(Bytes::from(line.repeat(MAX_LINE_BYTES / 1000 + 10)))];
        let events: Vec<_> = sse_events("p", futures::stream::iter(parts))
            .collect()
            .await;
        assert_eq!(events.len(), 1, "nothing after the error");
        assert!(matches!(events[0], Err(ProviderError::Protocol { .. })));
    }

    #[tokio::test]
    async fn an_endless_line_is_a_protocol_error() {
        let huge = vec![b'x'; MAX_LINE_BYTES + 10];
        let input = futures::stream::iter(vec![Ok(Bytes::from(huge))]).boxed();
        let first = lines("p", input).next().await.unwrap();
        assert!(matches!(first, Err(ProviderError::Protocol { .. })));
    }
}
