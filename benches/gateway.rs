//! Gateway overhead: `/v1/chat/completions` (non-stream) through the release `ragd` binary vs
//! straight to the same fast mock upstream, at concurrency 64. Reports latency percentiles of
//! both, the added latency, requests/s, and ragd's CPU seconds per 1,000 requests (from
//! /proc, ragd's process only; the client and the mock run in this bench process).
//!
//! Run on demand: `cargo bench --bench gateway` (figures go into docs/benchmarks.md).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed step fails the bench"
)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

const CONCURRENCY: usize = 64;
const REQUESTS: usize = 20_000;
const WARM_UP: usize = 2_000;

async fn mock_upstream() -> String {
    let router = Router::new().route(
        "/v1/chat/completions",
        post(|Json(body): Json<Value>| async move {
            Json(json!({
                "id": "chatcmpl-mock", "object": "chat.completion", "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/v1")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_ragd(dir: &std::path::Path, port: u16, upstream: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ragd"))
        .current_dir(dir)
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATA_DIR", dir.join("data"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/data/ragd.db", dir.display()),
        )
        .env("OPENAI_BASE_URL", upstream)
        .env("OPENAI_API_KEY", "sk-bench")
        .env("DEFAULT_MODEL", "gpt-4o-mini")
        .env("RATE_LIMIT_PER_MINUTE", "1000000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ragd starts")
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Sends `count` requests with `CONCURRENCY` in flight; returns each latency and the wall time.
async fn load(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    count: usize,
) -> (Vec<Duration>, Duration) {
    let body =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]});
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn token_for(client: &reqwest::Client, base: &str) -> String {
    let credentials = json!({"email": "bench@example.com", "password": "correct horse battery"});
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    let token: Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}

#[tokio::main]
async fn main() {
    let upstream = mock_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut ragd = start_ragd(dir.path(), port, &upstream);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "ragd did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = token_for(&client, &base).await;
    let direct_url = format!("{upstream}/chat/completions");
    let ragd_url = format!("{base}/v1/chat/completions");

    load(&client, &direct_url, None, WARM_UP).await;
    load(&client, &ragd_url, Some(&token), WARM_UP).await;

    let (mut direct, direct_wall) = load(&client, &direct_url, None, REQUESTS).await;
    let cpu_before = cpu_seconds(ragd.id());
    let (mut through, through_wall) = load(&client, &ragd_url, Some(&token), REQUESTS).await;
    let cpu = cpu_seconds(ragd.id()) - cpu_before;
    direct.sort_unstable();
    through.sort_unstable();

    println!("{REQUESTS} requests, concurrency {CONCURRENCY}");
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
    let _ = ragd.kill();
    let _ = ragd.wait();
}
