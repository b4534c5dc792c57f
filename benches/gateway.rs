//! Gateway overhead: `/v1/chat/completions` (non-stream) through the release `ragd` binary vs
//! straight to the same fast mock upstream, at concurrency 64. Reports latency percentiles of
//! both, the added latency, requests/s, and ragd's CPU seconds per 1,000 requests (from
//! /proc, ragd's process only; the client and the mock run in this bench process).
//!
//! Run on demand: `cargo bench --bench gateway` (figures go into docs/benchmarks.md);
//! `GATEWAY_BENCH_PROMPT_BYTES=8000` sends a prompt of that size instead of "Say hello";
//! `GATEWAY_BENCH_UPSTREAM_MS=20` makes the mock take that long to answer, as a provider
//! does. With an instant mock the 64 requests queue for ragd's CPU (its throughput is what is
//! measured); with a provider's latency they do not, and the added latency is ragd's own.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step fails the bench"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use support::{cpu_seconds, free_port, millis, percentile, start_ragd, token_for};

mod support;

const CONCURRENCY: usize = 64;
const REQUESTS: usize = 20_000;
const WARM_UP: usize = 2_000;

/// `GATEWAY_BENCH_UPSTREAM_MS`, or no delay.
fn upstream_delay() -> Duration {
    let millis = std::env::var("GATEWAY_BENCH_UPSTREAM_MS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    Duration::from_millis(millis)
}

async fn mock_upstream(delay: Duration) -> String {
    let router = Router::new().route(
        "/v1/chat/completions",
        post(move |Json(body): Json<Value>| async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Json(json!({
                "id": "chatcmpl-mock", "object": "chat.completion", "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
            }))
        }),
    );
    support::serve_upstream(router).await
}

/// The user message: "Say hello", or with `GATEWAY_BENCH_PROMPT_BYTES` set, that many bytes of
/// English-like text (a prompt carrying retrieved sources is typically 4-16 KB).
fn prompt() -> String {
    let bytes: usize = std::env::var("GATEWAY_BENCH_PROMPT_BYTES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut text = String::from("Say hello");
    const FILLER: &str =
        " after reading the ownership chapter, where values move between variables";
    while text.len() + FILLER.len() <= bytes {
        text.push_str(FILLER);
    }
    text
}

/// Sends `count` requests with `CONCURRENCY` in flight; returns each latency and the wall time.
async fn load(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    count: usize,
) -> (Vec<Duration>, Duration) {
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt()}]});
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..CONCURRENCY).map(|_| {
        let (client, url, body, next) =
            (client.clone(), url.to_owned(), body.clone(), next.clone());
        let token = token.map(str::to_owned);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let mut request = client.post(&url).json(&body);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let sent = Instant::now();
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap();
                latencies.push(sent.elapsed());
            }
            latencies
        })
    });
    let mut all = Vec::with_capacity(count);
    for worker in futures::future::join_all(workers).await {
        all.extend(worker.unwrap());
    }
    (all, started.elapsed())
}

#[tokio::main]
async fn main() {
    let delay = upstream_delay();
    let upstream = mock_upstream(delay).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let ragd = start_ragd(dir.path(), port, &upstream, "gpt-4o-mini", &[]);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    support::wait_ready(&client, &base).await;
    let token = token_for(&client, &base).await;
    let direct_url = format!("{upstream}/chat/completions");
    let ragd_url = format!("{base}/v1/chat/completions");

    load(&client, &direct_url, None, WARM_UP).await;
    load(&client, &ragd_url, Some(&token), WARM_UP).await;

    let (mut direct, direct_wall) = load(&client, &direct_url, None, REQUESTS).await;
    let cpu_before = cpu_seconds(ragd.pid());
    let (mut through, through_wall) = load(&client, &ragd_url, Some(&token), REQUESTS).await;
    let cpu = cpu_seconds(ragd.pid()) - cpu_before;
    direct.sort_unstable();
    through.sort_unstable();

    println!(
        "{REQUESTS} requests, concurrency {CONCURRENCY}, upstream answers after {} ms",
        delay.as_millis()
    );
    println!("| path | p50 ms | p99 ms | requests/s |");
    println!("|---|---|---|---|");
    for (name, latencies, wall) in [
        ("mock directly", &direct, direct_wall),
        ("through ragd", &through, through_wall),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.0} |",
            millis(percentile(latencies, 0.5)),
            millis(percentile(latencies, 0.99)),
            REQUESTS as f64 / wall.as_secs_f64()
        );
    }
    println!(
        "added latency: p50 {:.3} ms, p99 {:.3} ms; ragd CPU {:.3} s per 1,000 requests",
        millis(percentile(&through, 0.5)) - millis(percentile(&direct, 0.5)),
        millis(percentile(&through, 0.99)) - millis(percentile(&direct, 0.99)),
        cpu / (REQUESTS as f64 / 1000.0)
    );
}
