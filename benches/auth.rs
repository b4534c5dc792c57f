//! What authentication and rate limiting cost per request: the pieces in process (JWT verify,
//! API key lookup, a limiter check in memory and through Redis) and, over real sockets, requests/s
//! on an authenticated, limited route against `/health`.
//!
//! Run on demand: `cargo bench --bench auth` (with `REDIS_URL` set to also measure Redis);
//! figures go into docs/benchmarks.md.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark reports on stdout and stops at the first failure"
)]

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ragd::app::App;
use ragd::cache::memory::MemoryRateLimiter;
use ragd::cache::redis::{RedisRateLimiter, connect};
use ragd::cache::{Quota, RateLimiter};
use ragd::config::Settings;
use ragd::domain::{Email, Password, Role};
use ragd::secret::Secret;
use ragd::services::auth::jwt::JwtKeys;

const SECRET: &str = "bench-secret-key-that-is-long-enough-for-hs256-0123456789";

/// Runs `op` for about `budget` after a short warm-up; returns the mean time per call.
async fn per_call<F, Fut>(budget: Duration, mut op: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    for i in 0..200 {
        op(i).await;
    }
    let started = Instant::now();
    let mut calls = 0_u64;
    while started.elapsed() < budget {
        for _ in 0..100 {
            op(calls).await;
            calls += 1;
        }
    }
    started.elapsed() / u32::try_from(calls).unwrap()
}

fn report(label: &str, per_call: Duration) {
    println!("{label:<58} {:>9.2} µs/call", per_call.as_secs_f64() * 1e6);
}

/// Requests/s of `concurrency` clients each sending GETs to `url` for `budget`.
async fn throughput(url: &str, token: Option<&str>, concurrency: usize, budget: Duration) -> f64 {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.to_owned();
        let token = token.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let mut done = 0_u64;
            while started.elapsed() < budget {
                let mut request = client.get(&url);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200, "{url}");
                let _ = response.bytes().await.unwrap();
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let budget = Duration::from_secs(2);
    let dir = tempfile::tempdir().unwrap();
    let values: HashMap<String, String> = [
        ("DATA_DIR", dir.path().display().to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/ragd.db", dir.path().display()),
        ),
        ("PORT", "0".to_owned()),
        ("SECRET_KEY", SECRET.to_owned()),
        ("RATE_LIMIT_PER_MINUTE", "1000000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let app = App::build(Settings::from_map(&values).unwrap())
        .await
        .unwrap();
    let address = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    tokio::spawn(app.serve_until(std::future::pending()));

    let accounts = state.accounts.clone();
    let user = accounts
        .create(
            Email::parse("bench@example.com").unwrap(),
            Password::parse("correct horse battery").unwrap(),
            Role::User,
        )
        .await
        .unwrap();
    let jwt = accounts
        .login("bench@example.com", "correct horse battery")
        .await
        .unwrap()
        .token
        .expose()
        .to_owned();
    let key = accounts
        .create_api_key(user.id, "bench")
        .await
        .unwrap()
        .secret
        .expose()
        .to_owned();

    println!("in process (SQLite store, one task):");
    let keys = JwtKeys::new(&Secret::new(SECRET.to_owned()));
    report(
        "JWT verify (HS256, claims checked)",
        per_call(budget, |_| {
            let result = keys.verify(&jwt);
            async move {
                result.unwrap();
            }
        })
        .await,
    );
    report(
        "authenticate(JWT): verify + user by id",
        per_call(budget, |_| async {
            accounts.authenticate(&jwt).await.unwrap();
        })
        .await,
    );
    report(
        "authenticate(rk_ key): SHA-256 + one indexed lookup joined to user",
        per_call(budget, |_| async {
            accounts.authenticate(&key).await.unwrap();
        })
        .await,
    );

    let quota = Quota {
        per_minute: NonZeroU32::new(1_000_000).unwrap(),
    };
    let memory = MemoryRateLimiter::default();
    report(
        "limiter check, memory (1000 distinct keys)",
        per_call(budget, |i| {
            let memory = &memory;
            async move {
                memory
                    .check(&format!("user:{}", i % 1000), quota, 1)
                    .await
                    .unwrap();
            }
        })
        .await,
    );
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let redis = RedisRateLimiter::new(connect(&url).await.unwrap());
            let redis: Arc<dyn RateLimiter> = Arc::new(redis);
            report(
                "limiter check, Redis (one EVALSHA round trip, loopback)",
                per_call(budget, |i| {
                    let redis = redis.clone();
                    async move {
                        redis
                            .check(&format!("bench:user:{}", i % 1000), quota, 1)
                            .await
                            .unwrap();
                    }
                })
                .await,
            );
        }
        _ => println!("limiter check, Redis: skipped (REDIS_URL unset)"),
    }

    println!("\nover HTTP (reqwest client in the same process, 2 shared cores):");
    for concurrency in [1, 8] {
        let health = throughput(&format!("{address}/health"), None, concurrency, budget).await;
        let me_url = format!("{address}/api/v1/auth/me");
        let with_jwt = throughput(&me_url, Some(&jwt), concurrency, budget).await;
        let with_key = throughput(&me_url, Some(&key), concurrency, budget).await;
        println!(
            "{concurrency} client(s): /health {health:.0} req/s; /api/v1/auth/me with JWT {with_jwt:.0} req/s ({:.0}%), with API key {with_key:.0} req/s ({:.0}%)",
            100.0 * with_jwt / health,
            100.0 * with_key / health,
        );
    }
}
