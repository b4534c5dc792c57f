//! The one outbound HTTP client every provider shares, and the policy for calling it:
//! a deadline per call, an idle limit between stream chunks, and retries with backoff.
//!
//! Retries happen only here, before any byte of the answer has been handed to a caller,
//! so a retried request can never duplicate text a client already received.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Request, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use tokio::time::{Instant, Sleep};

use super::ProviderError;
use super::clients::{Clients, MakeClient, STREAMS_PER_LANE, Ticket};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a call waits while another makes the first connection to their server (see
/// `clients`). A TLS handshake with a hosted API takes well under a second; a provider that
/// does not answer its first connection within one is not worth holding every call for until
/// the connect timeout, so they then go ahead on their own.
const FIRST_CONTACT_WAIT: Duration = Duration::from_secs(1);
/// Idle pooled connections are closed before typical load balancers drop them silently.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// How many bytes an HTTP/2 upstream (OpenAI's API, over TLS) may send ahead of what ragd has
/// read, over all streams of one connection. The h2 crate also bounds the number of small
/// DATA frames left unread to half of this, and drops the whole connection, every stream on
/// it, when that is passed. Providers send a frame per token, so under load hyper's default
/// of 5 MiB (about 24,000 frames) failed all 10,000 streams of the streams benchmark at once.
const HTTP2_CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;
/// Largest non-streamed answer accepted (a big batch of embeddings is the largest case).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How much of an error body is read to summarize it.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// Longest provider error message passed on to callers.
const MAX_ERROR_MESSAGE_CHARS: usize = 200;

/// When and how often to retry a failed attempt.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    /// First backoff step; each retry doubles it (with full jitter) up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the caller gets `RateLimited`.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    pub fn new(max_retries: u32) -> Self {
        Self {
            max_retries,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(20),
        }
    }

    /// Exponential backoff with full jitter for the retry after `attempt` failed attempts.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }
}

/// A provider endpoint parsed once. Given a string, reqwest parses the URL on every request,
/// which (with the host's IDNA processing) costs more than everything else in building the
/// request. A string that does not parse is kept as is, so the request fails with reqwest's
/// own error, as it would have.
pub struct Endpoint {
    text: String,
    parsed: Option<reqwest::Url>,
}

impl Endpoint {
    pub fn new(url: String) -> Self {
        Self {
            parsed: reqwest::Url::parse(&url).ok(),
            text: url,
        }
    }

    /// A POST to this endpoint.
    pub fn post(&self, client: &reqwest::Client) -> RequestBuilder {
        match &self.parsed {
            Some(url) => client.post(url.clone()),
            None => client.post(&self.text),
        }
    }
}

/// How every client is set up, TLS aside. Redirects are not followed: a provider's API does
/// not redirect, and following one would send the provider's key (the `Authorization` or
/// `x-api-key` header) to wherever it points; a 3xx is an error like any other status.
fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true)
        .http2_initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        .user_agent(concat!("ragd/", env!("CARGO_PKG_VERSION")))
}

/// The platform's trusted roots (which honour `SSL_CERT_FILE` and `SSL_CERT_DIR`), loaded
/// once for all clients.
fn platform_tls() -> Result<rustls::ClientConfig, ProviderError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|error| client_error(format!("cannot set up TLS: {error}")))?
        .with_no_client_auth())
}

fn with_alpn(tls: &rustls::ClientConfig, protocols: &[&[u8]]) -> rustls::ClientConfig {
    let mut tls = tls.clone();
    tls.alpn_protocols = protocols.iter().map(|protocol| protocol.to_vec()).collect();
    tls
}

fn client_error(message: String) -> ProviderError {
    ProviderError::Connect {
        provider: "http",
        message,
    }
}

/// The pooled clients plus the time limits, cloned cheaply into every provider.
#[derive(Debug, Clone)]
pub struct LlmHttp {
    clients: Arc<Clients>,
    timeout: Duration,
    idle_timeout: Duration,
    retry: RetryPolicy,
}

impl LlmHttp {
    /// `timeout` bounds a whole call (all attempts, and a stream to its end); `idle_timeout`
    /// bounds each silence between two stream chunks.
    pub fn new(
        timeout: Duration,
        idle_timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ProviderError> {
        let tls = platform_tls()?;
        Self::with_tls(&tls, STREAMS_PER_LANE, timeout, idle_timeout, retry)
    }

    /// Negotiating clients offer HTTP/2 and HTTP/1.1, as reqwest's own setup does; the lanes
    /// of a server known to speak HTTP/2 speak it only (see [`Clients`]).
    fn with_tls(
        tls: &rustls::ClientConfig,
        streams_per_lane: usize,
        timeout: Duration,
        idle_timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ProviderError> {
        let negotiating = with_alpn(tls, &[b"h2", b"http/1.1"]);
        let make_negotiating: MakeClient = Box::new(move |note_http2| {
            client_builder()
                .connector_layer(note_http2)
                .tls_backend_preconfigured(negotiating.clone())
                .build()
        });
        let http2_only = with_alpn(tls, &[b"h2"]);
        let make_http2_only: MakeClient = Box::new(move |_| {
            client_builder()
                .http2_prior_knowledge()
                .tls_backend_preconfigured(http2_only.clone())
                .build()
        });
        let clients = Clients::new(make_negotiating, make_http2_only, streams_per_lane)
            .map_err(|error| client_error(format!("cannot build the HTTP client: {error}")))?;
        Ok(Self {
            clients: Arc::new(clients),
            timeout,
            idle_timeout,
            retry,
        })
    }

    /// The client to build requests with (`send` chooses the one that sends them).
    pub fn client(&self) -> &reqwest::Client {
        self.clients.builder()
    }

    /// Sends `request`, retrying connect errors, 429 and 5xx with backoff, and returns the
    /// first successful response. Non-success answers become sanitized errors.
    pub async fn send(
        &self,
        provider: &'static str,
        request: RequestBuilder,
    ) -> Result<Upstream, ProviderError> {
        let deadline = Instant::now() + self.timeout;
        let request = request
            .build()
            .map_err(|error| transport_error(provider, &error))?;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let this_try = request.try_clone().ok_or_else(|| ProviderError::Protocol {
                provider,
                message: "request body cannot be replayed".to_owned(),
            })?;
            let first_contact_limit = deadline.min(Instant::now() + FIRST_CONTACT_WAIT);
            let ticket = self
                .clients
                .ticket(request.url(), first_contact_limit)
                .await;
            let outcome = self.attempt(provider, &ticket, this_try, deadline).await;
            let error = match outcome {
                Ok(response) => {
                    return Ok(Upstream {
                        provider,
                        response,
                        _ticket: ticket,
                        deadline,
                        idle_timeout: self.idle_timeout,
                    });
                }
                Err(error) => error,
            };
            if matches!(error.error, ProviderError::Connect { .. }) {
                ticket.connect_failed();
            }
            let Some(wait) = self.retry_wait(&error, attempt, deadline) else {
                return Err(error.error);
            };
            tracing::warn!(
                provider,
                attempt,
                kind = error.error.kind(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying LLM provider call"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        provider: &'static str,
        ticket: &Ticket,
        request: Request,
        deadline: Instant,
    ) -> Result<Response, FailedAttempt> {
        let call = ticket.client().execute(request);
        let response = match tokio::time::timeout_at(deadline, call).await {
            Err(_elapsed) => return Err(ProviderError::Timeout { provider }.into()),
            Ok(Err(error)) => return Err(transport_error(provider, &error).into()),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(response.headers());
        let body = read_limited(response, MAX_ERROR_BODY_BYTES, deadline)
            .await
            .unwrap_or_default();
        let error = if status == StatusCode::TOO_MANY_REQUESTS {
            ProviderError::RateLimited {
                provider,
                retry_after,
            }
        } else {
            ProviderError::Upstream {
                provider,
                status: status.as_u16(),
                message: summarize_error_body(status, &body),
            }
        };
        Err(FailedAttempt { error, retry_after })
    }

    /// How long to wait before the next attempt, or `None` when not retrying.
    fn retry_wait(
        &self,
        failed: &FailedAttempt,
        attempt: u32,
        deadline: Instant,
    ) -> Option<Duration> {
        if !failed.error.is_retryable() || attempt > self.retry.max_retries {
            return None;
        }
        let wait = match failed.retry_after {
            Some(asked) if asked > self.retry.max_retry_after => return None,
            Some(asked) => asked,
            None => self.retry.backoff(attempt),
        };
        (Instant::now() + wait < deadline).then_some(wait)
    }
}

/// One failed attempt, with the wait the provider asked for.
struct FailedAttempt {
    error: ProviderError,
    retry_after: Option<Duration>,
}

impl From<ProviderError> for FailedAttempt {
    fn from(error: ProviderError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

/// A successful response, still bound by the call's deadline and idle limit, holding its
/// place in its lane (if it took one) until dropped.
pub struct Upstream {
    provider: &'static str,
    response: Response,
    _ticket: Ticket,
    deadline: Instant,
    idle_timeout: Duration,
}

impl Upstream {
    /// Reads the whole body (bounded in size and time) and parses it as `T`.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ProviderError> {
        let provider = self.provider;
        let body = read_limited(self.response, MAX_BODY_BYTES, self.deadline)
            .await
            .map_err(|error| error.for_provider(provider))?;
        serde_json::from_slice(&body).map_err(|error| ProviderError::Protocol {
            provider,
            message: format!("invalid JSON body: {error}"),
        })
    }

    /// The body as it arrives. Each chunk must come within the idle limit and before the
    /// deadline; a broken connection is `StreamCut`. The stream owns the response, so
    /// dropping it closes the connection.
    pub fn into_chunks(self) -> BodyChunks {
        let limit = self.deadline.min(Instant::now() + self.idle_timeout);
        BodyChunks {
            provider: self.provider,
            body: Some((self.response.bytes_stream().boxed(), self._ticket)),
            deadline: self.deadline,
            idle_timeout: self.idle_timeout,
            timer: Box::pin(tokio::time::sleep_until(limit)),
        }
    }
}

/// A streamed body, chunk by chunk, within its idle limit and deadline. One timer is moved
/// on at every chunk rather than a new one set up per chunk: a streamed answer is a chunk
/// per token.
pub struct BodyChunks {
    provider: &'static str,
    /// The body, and the call's place in its lane; both let go as soon as the body ended,
    /// failed or timed out.
    body: Option<(BoxStream<'static, reqwest::Result<Bytes>>, Ticket)>,
    deadline: Instant,
    idle_timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl Stream for BodyChunks {
    type Item = Result<Bytes, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some((body, _ticket)) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        let item = match body.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let limit = this.deadline.min(Instant::now() + this.idle_timeout);
                this.timer.as_mut().reset(limit);
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(None) => None,
            Poll::Ready(Some(Err(_broken))) => Some(Err(ProviderError::StreamCut {
                provider: this.provider,
            })),
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Some(Err(ProviderError::Timeout {
                    provider: this.provider,
                }))
            }
        };
        this.body = None;
        Poll::Ready(item)
    }
}

/// Why a body could not be read in full.
enum ReadError {
    Timeout,
    TooLarge,
    Broken,
}

impl ReadError {
    fn for_provider(self, provider: &'static str) -> ProviderError {
        match self {
            Self::Timeout => ProviderError::Timeout { provider },
            Self::TooLarge => ProviderError::Protocol {
                provider,
                message: format!("response body larger than {MAX_BODY_BYTES} bytes"),
            },
            Self::Broken => ProviderError::StreamCut { provider },
        }
    }
}

async fn read_limited(
    response: Response,
    limit: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ReadError> {
    let mut body = response.bytes_stream();
    let mut collected = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Err(_elapsed) => return Err(ReadError::Timeout),
            Ok(None) => return Ok(collected),
            Ok(Some(Err(_broken))) => return Err(ReadError::Broken),
            Ok(Some(Ok(chunk))) => {
                if collected.len() + chunk.len() > limit {
                    return Err(ReadError::TooLarge);
                }
                collected.extend_from_slice(&chunk);
            }
        }
    }
}

fn transport_error(provider: &'static str, error: &reqwest::Error) -> ProviderError {
    if error.is_timeout() {
        return ProviderError::Timeout { provider };
    }
    // The innermost cause ("connection refused") says what went wrong without repeating the
    // URL, whose query string could hold a key.
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    ProviderError::Connect {
        provider,
        message: truncate_chars(&cause.to_string(), MAX_ERROR_MESSAGE_CHARS),
    }
}

/// The wait a `Retry-After` header asks for: delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let seconds = (date.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// A short, safe summary of a provider's error body: the `message` the provider wrote (all
/// three providers put one in `error.message` or `error`), truncated, with anything that
/// looks like a credential masked. Unparseable bodies are never echoed.
pub fn summarize_error_body(status: StatusCode, body: &[u8]) -> String {
    let reason = status.canonical_reason().unwrap_or("error").to_owned();
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return reason;
    };
    let message = json
        .pointer("/error/message")
        .or_else(|| json.get("error"))
        .or_else(|| json.get("message"))
        .and_then(serde_json::Value::as_str);
    match message {
        Some(message) if !message.trim().is_empty() => safe_message(message),
        _ => reason,
    }
}

/// A provider's own error message (from an error body, or an error sent inside a stream),
/// made fit to show the user and the logs: anything that looks like a credential masked,
/// truncated.
pub fn safe_message(message: &str) -> String {
    truncate_chars(&mask_credentials(message), MAX_ERROR_MESSAGE_CHARS)
}

/// Replaces words that look like API keys (`sk-...`, long mixed letter/digit runs).
fn mask_credentials(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let core = word.trim_matches(|c: char| !c.is_alphanumeric());
            let prefixed = ["sk-", "sk_", "rk_", "key-"]
                .iter()
                .any(|prefix| core.starts_with(prefix));
            let long_token = core.len() >= 24
                && core.chars().any(|c| c.is_ascii_digit())
                && core
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if prefixed || long_token {
                "[redacted]"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn retry_after_reads_delta_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn a_retry_after_within_the_cap_is_waited_for_and_a_longer_one_is_not() {
        let http = LlmHttp::new(
            Duration::from_secs(60),
            Duration::from_secs(5),
            RetryPolicy::new(3),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let limited = |seconds| FailedAttempt {
            error: ProviderError::RateLimited {
                provider: "p",
                retry_after: Some(Duration::from_secs(seconds)),
            },
            retry_after: Some(Duration::from_secs(seconds)),
        };
        assert_eq!(
            http.retry_wait(&limited(2), 1, deadline),
            Some(Duration::from_secs(2))
        );
        assert_eq!(http.retry_wait(&limited(600), 1, deadline), None);
        assert_eq!(
            http.retry_wait(&limited(2), 4, deadline),
            None,
            "retries are bounded"
        );
    }

    /// A body's frames, as the test server sends them.
    type Frames = futures::stream::BoxStream<
        'static,
        Result<hyper::body::Frame<Bytes>, std::convert::Infallible>,
    >;

    /// A server as a hosted provider's: HTTP/2 over TLS, at most `max_streams` streams open
    /// at once per connection. It answers every request with a body that never ends, and
    /// counts the connections it accepted. Returns its URL, the count, and a TLS setup that
    /// trusts its certificate.
    async fn capped_h2_server(
        max_streams: u32,
    ) -> (String, Arc<AtomicUsize>, rustls::ClientConfig) {
        h2_server(max_streams, Duration::ZERO, endless).await
    }

    fn endless() -> Frames {
        futures::stream::pending().boxed()
    }

    /// The same server, answering every request after `head_after` with the body `answer`
    /// makes.
    async fn h2_server(
        max_streams: u32,
        head_after: Duration,
        answer: fn() -> Frames,
    ) -> (String, Arc<AtomicUsize>, rustls::ClientConfig) {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        let mut server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certified.cert.der().clone()],
                PrivateKeyDer::Pkcs8(key),
            )
            .unwrap();
        server_tls.alpn_protocols = vec![b"h2".to_vec()];
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certified.cert.der().clone()).unwrap();
        let client_tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();

        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(socket).await else {
                        return;
                    };
                    let answer = hyper::service::service_fn(move |_request| async move {
                        tokio::time::sleep(head_after).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::StreamBody::new(answer()),
                        ))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(max_streams)
                        .serve_connection(TokioIo::new(stream), answer)
                        .await;
                });
            }
        });
        (format!("https://{address}/stream"), accepted, client_tls)
    }

    /// How many of `calls` concurrent calls get their response head within a second.
    async fn answered_at_once(http: &LlmHttp, url: &str, calls: usize) -> usize {
        let sends = (0..calls).map(|_| {
            let request = http.client().post(url).body("{}");
            tokio::time::timeout(Duration::from_secs(1), http.send("p", request))
        });
        let outcomes = futures::future::join_all(sends).await;
        outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(Ok(_))))
            .count()
    }

    fn calling_with(tls: &rustls::ClientConfig, streams_per_lane: usize) -> LlmHttp {
        let (timeout, idle) = (Duration::from_secs(30), Duration::from_secs(30));
        LlmHttp::with_tls(tls, streams_per_lane, timeout, idle, RetryPolicy::new(0)).unwrap()
    }

    #[tokio::test]
    async fn concurrent_calls_are_not_capped_by_one_http2_connection() {
        let (url, connections, tls) = capped_h2_server(4).await;
        let http = calling_with(&tls, 4);
        assert_eq!(answered_at_once(&http, &url, 1).await, 1, "first contact");
        assert_eq!(answered_at_once(&http, &url, 12).await, 12);
        // The first contact's connection, then one per HTTP/2 lane of 4 streams.
        assert_eq!(connections.load(Ordering::SeqCst), 1 + 3);
        let url = reqwest::Url::parse(&url).unwrap();
        assert_eq!(http.clients.http2_lanes_open(&url), 3);
    }

    /// Frames a provider streams: many small ones, as one per token.
    const SMALL_FRAMES: usize = 30_000;
    const SMALL_FRAME: &[u8] = b"tok tok t ";

    #[tokio::test]
    async fn many_small_frames_left_unread_do_not_drop_the_connection() {
        // h2 drops a whole connection (GOAWAY "too_many_data_frames") once its unread small
        // DATA frames, each counted as 256 bytes less its payload, pass half the connection
        // window. 30,000 frames of 10 bytes count 7.4 MB: past hyper's default window of
        // 5 MiB (a 2.5 MiB budget), within the 32 MiB window ragd asks for.
        let (url, _, tls) = h2_server(100, Duration::ZERO, || {
            futures::stream::iter(
                (0..SMALL_FRAMES)
                    .map(|_| Ok(hyper::body::Frame::data(Bytes::from_static(SMALL_FRAME)))),
            )
            .boxed()
        })
        .await;
        let http = calling_with(&tls, STREAMS_PER_LANE);
        let upstream = http.send("p", http.client().post(&url)).await.unwrap();
        // The client's connection task buffers the frames while nobody reads the body.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut received = 0;
        let mut chunks = upstream.into_chunks();
        while let Some(chunk) = chunks.next().await {
            received += chunk.unwrap().len();
        }
        assert_eq!(received, SMALL_FRAMES * SMALL_FRAME.len());
    }

    #[tokio::test]
    async fn a_server_is_known_to_speak_http2_once_connected_not_once_answered() {
        // A whole answer arrives only once the model has written it, seconds later; the calls
        // sent meanwhile must not each open a connection of their own.
        let (url, connections, tls) = h2_server(4, Duration::from_secs(5), endless).await;
        let http = calling_with(&tls, 4);
        let call = |http: LlmHttp, url: String| {
            tokio::spawn(async move { http.send("p", http.client().post(&url)).await.is_ok() })
        };
        let first = call(http.clone(), url.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let burst: Vec<_> = (0..12).map(|_| call(http.clone(), url.clone())).collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // The first call's connection, then one per HTTP/2 lane of 4 streams. Learning the
        // protocol from the first answer instead made it 10: every call of the burst that
        // found no connection in its lane opened one.
        assert_eq!(connections.load(Ordering::SeqCst), 1 + 3);
        first.abort();
        burst.iter().for_each(tokio::task::JoinHandle::abort);
    }

    #[tokio::test]
    async fn a_first_burst_to_a_server_not_yet_known_opens_one_connection_to_learn_its_protocol() {
        let (url, connections, tls) = h2_server(4, Duration::from_secs(5), endless).await;
        let http = calling_with(&tls, 4);
        let burst: Vec<_> = (0..12)
            .map(|_| {
                let (http, url) = (http.clone(), url.clone());
                tokio::spawn(async move { http.send("p", http.client().post(&url)).await.is_ok() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        // One call's connection learnt HTTP/2; the other 11 waited for it and went through
        // HTTP/2 lanes of 4 streams. Without the wait, each call negotiated a connection of
        // its own: 12.
        assert_eq!(connections.load(Ordering::SeqCst), 1 + 3);
        burst.iter().for_each(tokio::task::JoinHandle::abort);
    }

    #[tokio::test]
    async fn a_first_burst_to_a_server_not_yet_known_is_not_capped_either() {
        let (url, _, tls) = capped_h2_server(4).await;
        let http = calling_with(&tls, 4);
        assert_eq!(answered_at_once(&http, &url, 12).await, 12);
    }

    #[tokio::test]
    async fn one_client_alone_would_be_capped_by_its_connection() {
        // Why lanes exist: a client's pool keeps every call on the one connection it has, so
        // calls past the server's stream cap wait (hyper never opens a second connection).
        let (url, _, tls) = capped_h2_server(4).await;
        let one_lane = calling_with(&tls, usize::MAX);
        assert_eq!(
            answered_at_once(&one_lane, &url, 1).await,
            1,
            "first contact"
        );
        assert_eq!(answered_at_once(&one_lane, &url, 12).await, 4);
    }

    #[test]
    fn backoff_grows_but_stays_under_the_cap() {
        let policy = RetryPolicy::new(10);
        for attempt in 1..10 {
            assert!(policy.backoff(attempt) <= policy.max_delay);
        }
    }

    #[test]
    fn error_summary_keeps_the_message_and_masks_keys() {
        let body = br#"{"error":{"message":"Incorrect API key provided: sk-abc123secret. See docs.","type":"invalid_request_error"}}"#;
        let summary = summarize_error_body(StatusCode::UNAUTHORIZED, body);
        assert!(
            summary.starts_with("Incorrect API key provided:"),
            "{summary}"
        );
        assert!(!summary.contains("abc123secret"), "{summary}");
    }

    #[test]
    fn error_summary_never_echoes_a_non_json_body() {
        let summary =
            summarize_error_body(StatusCode::BAD_GATEWAY, b"<html>proxy token=abc</html>");
        assert_eq!(summary, "Bad Gateway");
    }

    #[test]
    fn error_summary_reads_ollama_style_errors() {
        let summary =
            summarize_error_body(StatusCode::NOT_FOUND, br#"{"error":"model 'x' not found"}"#);
        assert_eq!(summary, "model 'x' not found");
    }
}
