//! 10,000 simultaneous streaming chats on one `ragd` process (issue 4): the release binary
//! streams `POST /api/v1/chat/stream` (no RAG) from an in-process mock OpenAI upstream that
//! waits 2 s before the first token, then sends 50 tokens 100 ms apart. Reports the share of
//! streams that completed (`done` event), the client's time to first token minus the mock's
//! 2 s (the added TTFT), and ragd's peak RSS (VmHWM), CPU time and thread count.
//!
//! The mock speaks HTTP/2 over TLS, as OpenAI's API does, so ragd's upstream streams share
//! one connection; `STREAMS_BENCH_UPSTREAM=http1` makes it plain HTTP/1.1 instead (as a
//! local vLLM or Ollama is reached), one upstream connection per stream.
//!
//! Run on demand: `cargo bench --locked --bench streams -- 10000` (the count defaults to
//! 10,000). The client and ragd each hold one socket per stream (with `http1`, ragd and the
//! mock one more each), so the open-files limit must be above the count (twice it). Stops
//! by itself: streams not finished 60 s after the first was sent count as incomplete. Figures
//! go into docs/benchmarks.md.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step fails the bench"
)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{Value, json};
use support::{free_port, millis, percentile, start_ragd, token_for};
use tokio::time::Instant;

mod support;
#[path = "support/tls_upstream.rs"]
mod tls_upstream;

const DEFAULT_STREAMS: usize = 10_000;
const MODEL: &str = "mock-streamer";
const FIRST_TOKEN_AFTER: Duration = Duration::from_secs(2);
const TOKENS: usize = 50;
const TOKEN_INTERVAL: Duration = Duration::from_millis(100);
/// Streams are opened `RAMP_BATCH` at a time every `RAMP_STEP` (5,000 per second): quickly,
/// but without a single burst overflowing the listen backlog.
const RAMP_BATCH: usize = 50;
const RAMP_STEP: Duration = Duration::from_millis(10);
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// One `chat.completion.chunk` SSE frame.
fn chunk(model: &str, delta: Value, finish_reason: Value) -> String {
    let chunk = json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
    });
    format!("data: {chunk}\n\n")
}

/// The mock's answer: nothing for 2 s, then 50 tokens 100 ms apart, then the finish reason,
/// the usage chunk and `[DONE]`.
async fn mock_stream(Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let frames = futures::stream::unfold(0, move |i| {
        let model = model.clone();
        async move {
            let frame = match i {
                0 => {
                    tokio::time::sleep(FIRST_TOKEN_AFTER).await;
                    chunk(
                        &model,
                        json!({"role": "assistant", "content": "tok0 "}),
                        Value::Null,
                    )
                }
                1..TOKENS => {
                    tokio::time::sleep(TOKEN_INTERVAL).await;
                    chunk(&model, json!({"content": format!("tok{i} ")}), Value::Null)
                }
                TOKENS => {
                    let usage = json!({
                        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1,
                        "model": model, "choices": [],
                        "usage": {"prompt_tokens": 9, "completion_tokens": TOKENS, "total_tokens": 9 + TOKENS}
                    });
                    format!(
                        "{}data: {usage}\n\ndata: [DONE]\n\n",
                        chunk(&model, json!({}), json!("stop"))
                    )
                }
                _ => return None,
            };
            Some((Ok::<_, Infallible>(Bytes::from(frame)), i + 1))
        }
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(frames),
    )
        .into_response()
}

/// The stream count: the first argument that is a number (cargo adds `--bench`).
fn streams_from_args() -> usize {
    std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(DEFAULT_STREAMS)
}

/// (soft, hard) open-files limits of this process, from /proc ("unlimited" as u64::MAX).
fn open_files_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let mut values = line["Max open files".len()..]
        .split_whitespace()
        .map(|value| value.parse().unwrap_or(u64::MAX));
    (values.next().unwrap(), values.next().unwrap())
}

/// Raises the soft open-files limit to the hard one when `needed` is above it (with util-linux
/// `prlimit`: this crate has no `setrlimit` binding and no unsafe code). Returns false, having
/// said what to do, when the limit stays too low.
fn ensure_open_files(needed: u64) -> bool {
    let (soft, hard) = open_files_limits();
    if soft < needed && hard > soft {
        let _ = std::process::Command::new("prlimit")
            .arg(format!("--pid={}", std::process::id()))
            .arg(format!("--nofile={hard}:{hard}"))
            .status();
    }
    let (soft, hard) = open_files_limits();
    if soft >= needed {
        return true;
    }
    println!(
        "{needed} open files are needed (one socket per stream in the client and ragd, and with \
         an HTTP/1.1 upstream one more in the mock and ragd), \
         but the limit is {soft} (hard limit {hard}). Raise it first, e.g. `ulimit -n 65536` \
         (above the hard limit needs CAP_SYS_RESOURCE), or pass a smaller count: \
         `cargo bench --bench streams -- 1000`."
    );
    false
}

/// The value of a `Key:   value kB` line of /proc/<pid>/status.
fn status_field(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[derive(Default)]
struct Outcome {
    /// From sending the request to the first `{"token": ...}` event.
    ttft: Option<Duration>,
    /// From sending the request to the `{"done": true, ...}` event.
    total: Option<Duration>,
    failure: Option<String>,
}

fn contains(line: &[u8], needle: &[u8]) -> bool {
    line.windows(needle.len()).any(|window| window == needle)
}

fn error_kind(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "connect"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    };
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    format!("{kind}: {cause}")
}

/// One streaming chat, read event by event.
async fn one_stream(client: reqwest::Client, url: String, token: String, body: Value) -> Outcome {
    let sent = Instant::now();
    let mut outcome = Outcome::default();
    let response = match client.post(url).bearer_auth(token).json(&body).send().await {
        Ok(response) => response,
        Err(error) => {
            outcome.failure = Some(error_kind(&error));
            return outcome;
        }
    };
    if !response.status().is_success() {
        let status = response.status();
        let error: Value = response.json().await.unwrap_or_default();
        outcome.failure = Some(format!("status {status} {}", error["error"]["code"]));
        return outcome;
    }
    let mut body = response.bytes_stream();
    let mut pending = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = match piece {
            Ok(piece) => piece,
            Err(error) => {
                outcome.failure = Some(error_kind(&error));
                return outcome;
            }
        };
        pending.extend_from_slice(&piece);
        while let Some(end) = pending.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if !line.starts_with(b"data:") {
                continue;
            }
            if contains(&line, b"\"token\":") {
                outcome.ttft.get_or_insert_with(|| sent.elapsed());
            } else if contains(&line, b"\"done\":true") {
                outcome.total = Some(sent.elapsed());
            } else if contains(&line, b"\"error\":") {
                outcome.failure = Some(String::from_utf8_lossy(&line).trim().to_owned());
            }
        }
    }
    if outcome.total.is_none() && outcome.failure.is_none() {
        outcome.failure = Some("stream ended without a done event".to_owned());
    }
    outcome
}

#[tokio::main]
async fn main() {
    let streams = streams_from_args();
    let http1 = std::env::var("STREAMS_BENCH_UPSTREAM").is_ok_and(|value| value == "http1");
    let sockets_per_stream = if http1 { 2 } else { 1 };
    if !ensure_open_files(sockets_per_stream * streams as u64 + 100) {
        std::process::exit(1);
    }
    let mock = Router::new().route("/v1/chat/completions", post(mock_stream));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ragd = if http1 {
        let upstream = support::serve_upstream(mock).await;
        start_ragd(dir.path(), port, &upstream, MODEL, &[])
    } else {
        let (upstream, certificate) = tls_upstream::serve(mock, dir.path()).await;
        let trust = [("SSL_CERT_FILE", certificate.as_path())];
        start_ragd(dir.path(), port, &upstream, MODEL, &trust)
    };
    let pid = ragd.pid();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    support::wait_ready(&client, &base).await;
    let token = tokio::time::timeout(Duration::from_secs(10), token_for(&client, &base))
        .await
        .expect("register and sign in within 10 s");
    let idle_rss_kb = status_field(pid, "VmRSS:").unwrap_or(0);
    let cpu_before = support::cpu_seconds(pid);

    let peak_threads = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak_threads = peak_threads.clone();
        tokio::spawn(async move {
            loop {
                if let Some(threads) = status_field(pid, "Threads:") {
                    peak_threads.fetch_max(threads, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let url = format!("{base}/api/v1/chat/stream");
    let body = json!({
        "messages": [{"role": "user", "content": "Say hello"}],
        "use_rag": false, "max_tokens": 64
    });
    let started = Instant::now();
    let deadline = started + RUN_LIMIT;
    let mut tasks = Vec::with_capacity(streams);
    for i in 0..streams {
        if i > 0 && i % RAMP_BATCH == 0 {
            tokio::time::sleep(RAMP_STEP).await;
        }
        let stream = one_stream(client.clone(), url.clone(), token.clone(), body.clone());
        tasks.push(tokio::spawn(tokio::time::timeout_at(deadline, stream)));
    }
    let ramp = started.elapsed();
    let mut ttfts = Vec::with_capacity(streams);
    let mut totals = Vec::with_capacity(streams);
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for task in futures::future::join_all(tasks).await {
        let outcome = task.unwrap().unwrap_or_else(|_| Outcome {
            failure: Some(format!("not done within {} s", RUN_LIMIT.as_secs())),
            ..Outcome::default()
        });
        ttfts.extend(outcome.ttft);
        totals.extend(outcome.total);
        if let Some(failure) = outcome.failure {
            *failures.entry(failure).or_default() += 1;
        }
    }
    let wall = started.elapsed();
    sampler.abort();
    let peak_rss_kb = status_field(pid, "VmHWM:").unwrap_or(0);
    let cpu = support::cpu_seconds(pid) - cpu_before;
    let threads_after = status_field(pid, "Threads:").unwrap_or(0);
    ttfts.sort_unstable();
    totals.sort_unstable();

    println!(
        "{streams} streams opened in {:.2} s; mock ({}): {} ms to the first token, {TOKENS} tokens {} ms apart",
        ramp.as_secs_f64(),
        if http1 { "HTTP/1.1" } else { "HTTP/2 over TLS" },
        FIRST_TOKEN_AFTER.as_millis(),
        TOKEN_INTERVAL.as_millis()
    );
    println!(
        "completed: {} / {streams} = {:.3} % (wall {:.1} s)",
        totals.len(),
        100.0 * totals.len() as f64 / streams as f64,
        wall.as_secs_f64()
    );
    if !ttfts.is_empty() {
        let mock = millis(FIRST_TOKEN_AFTER);
        let (p50, p99, max) = (
            millis(percentile(&ttfts, 0.5)),
            millis(percentile(&ttfts, 0.99)),
            millis(percentile(&ttfts, 1.0)),
        );
        println!(
            "client TTFT ({} streams with a token): p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms",
            ttfts.len()
        );
        println!(
            "added TTFT (minus the mock's {mock:.0} ms): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            p50 - mock,
            p99 - mock,
            max - mock
        );
    }
    if !totals.is_empty() {
        println!(
            "stream duration: p50 {:.1} ms, p99 {:.1} ms (the mock alone: {} ms)",
            millis(percentile(&totals, 0.5)),
            millis(percentile(&totals, 0.99)),
            (FIRST_TOKEN_AFTER + TOKEN_INTERVAL * (TOKENS as u32 - 1)).as_millis()
        );
    }
    println!(
        "ragd: RSS {:.1} MB idle before the run, peak RSS (VmHWM) {:.1} MB; threads peak {}, {} after",
        idle_rss_kb as f64 / 1024.0,
        peak_rss_kb as f64 / 1024.0,
        peak_threads.load(std::sync::atomic::Ordering::Relaxed),
        threads_after
    );
    println!("ragd: {cpu:.2} s of CPU (user + system) for the run");
    for (failure, count) in &failures {
        println!("failed: {count} x {failure}");
    }
    drop(ragd);
}
