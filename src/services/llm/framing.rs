//! Framing of streamed bodies: bytes into lines (Ollama's NDJSON), lines into server-sent
//! events (OpenAI and Anthropic), and provider frames into [`StreamEvent`]s with the
//! end-of-stream rules every provider shares.

use bytes::{Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use super::{EventStream, FinishReason, ProviderError, StreamEvent, Usage};

/// Longest line accepted from a provider; a longer one means a broken or hostile upstream.
const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Splits a byte stream into UTF-8 lines without their `\n` / `\r\n`. A last line without a
/// newline is still yielded; errors from the byte stream pass through and end the stream.
pub fn lines(
    provider: &'static str,
    chunks: impl Stream<Item = Result<Bytes, ProviderError>> + Send + 'static,
) -> BoxStream<'static, Result<String, ProviderError>> {
    let state = (chunks.boxed(), BytesMut::new(), false);
    futures::stream::unfold(
        state,
        move |(mut chunks, mut buffer, mut finished)| async move {
            loop {
                if let Some(end) = buffer.iter().position(|&byte| byte == b'\n') {
                    let line = buffer.split_to(end + 1);
                    return Some((decode_line(provider, &line), (chunks, buffer, finished)));
                }
                if finished {
                    if buffer.is_empty() {
                        return None;
                    }
                    let line = buffer.split();
                    return Some((decode_line(provider, &line), (chunks, buffer, finished)));
                }
                if buffer.len() > MAX_LINE_BYTES {
                    let error = ProviderError::Protocol {
                        provider,
                        message: format!("stream line longer than {MAX_LINE_BYTES} bytes"),
                    };
                    return Some((Err(error), (chunks, BytesMut::new(), true)));
                }
                match chunks.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(error)) => return Some((Err(error), (chunks, BytesMut::new(), true))),
                    None => finished = true,
                }
            }
        },
    )
    .boxed()
}

fn decode_line(provider: &'static str, raw: &[u8]) -> Result<String, ProviderError> {
    let text = std::str::from_utf8(raw).map_err(|_| ProviderError::Protocol {
        provider,
        message: "stream line is not UTF-8".to_owned(),
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// One server-sent event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Groups lines into server-sent events (a blank line ends an event; comments and other
/// fields are ignored), per the WHATWG event-stream format.
pub fn sse_events(
    lines: BoxStream<'static, Result<String, ProviderError>>,
) -> BoxStream<'static, Result<SseEvent, ProviderError>> {
    futures::stream::unfold(Some(lines), |state| async move {
        let mut lines = state?;
        let mut event: Option<String> = None;
        let mut data: Option<String> = None;
        loop {
            let line = match lines.next().await {
                Some(Ok(line)) => line,
                Some(Err(error)) => return Some((Err(error), None)),
                None => {
                    let last = data.map(|data| Ok(SseEvent { event, data }));
                    return last.map(|event| (event, None));
                }
            };
            if line.is_empty() {
                if let Some(data) = data.take() {
                    return Some((Ok(SseEvent { event, data }), Some(lines)));
                }
                event = None;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = Some(value.to_owned()),
                "data" => match data.as_mut() {
                    Some(joined) => {
                        joined.push('\n');
                        joined.push_str(value);
                    }
                    None => data = Some(value.to_owned()),
                },
                _ => {}
            }
        }
    })
    .boxed()
}

/// What one provider frame means for the caller.
pub enum Frame {
    Token(String),
    /// Nothing for the caller (role announcements, pings, usage-only chunks).
    Ignore,
    /// The provider finished, reporting this usage (if it reported any) and why it stopped.
    Done(Option<Usage>, FinishReason),
}

/// Turns a provider's frames into stream events with `decode`. The stream ends after the
/// first `Done` or error; frames that end without a `Done` mean the answer was cut.
pub fn decode_events<F, D>(
    provider: &'static str,
    frames: BoxStream<'static, Result<F, ProviderError>>,
    decode: D,
) -> EventStream
where
    F: Send + 'static,
    D: FnMut(F) -> Result<Frame, ProviderError> + Send + 'static,
{
    futures::stream::unfold(Some((frames, decode)), move |state| async move {
        let (mut frames, mut decode) = state?;
        loop {
            let decoded = match frames.next().await {
                None => Err(ProviderError::StreamCut { provider }),
                Some(Err(error)) => Err(error),
                Some(Ok(frame)) => decode(frame),
            };
            match decoded {
                Ok(Frame::Ignore) => continue,
                Ok(Frame::Token(text)) => {
                    return Some((Ok(StreamEvent::Token(text)), Some((frames, decode))));
                }
                Ok(Frame::Done(usage, finish)) => {
                    return Some((Ok(StreamEvent::Done { usage, finish }), None));
                }
                Err(error) => return Some((Err(error), None)),
            }
        }
    })
    .boxed()
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
        let events: Vec<SseEvent> = sse_events(lines("p", input))
            .map(Result::unwrap)
            .collect()
            .await;
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
    async fn an_endless_line_is_a_protocol_error() {
        let huge = vec![b'x'; MAX_LINE_BYTES + 10];
        let input = futures::stream::iter(vec![Ok(Bytes::from(huge))]).boxed();
        let first = lines("p", input).next().await.unwrap();
        assert!(matches!(first, Err(ProviderError::Protocol { .. })));
    }
}
