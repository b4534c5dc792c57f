//! What authentication and rate limiting cost per request: criterion microbenchmarks of the
//! pieces in process (JWT verify; resolving an access token or an API key from the credential
//! cache and, cache off, from the database; a limiter check in memory and through Redis) and,
//! over real sockets, requests/s on an authenticated, limited route against `/health`.
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

use criterion::Criterion;
use ragd::app::App;
use ragd::cache::memory::MemoryRateLimiter;
use ragd::cache::redis::{RedisRateLimiter, connect};
use ragd::cache::{Quota, RateLimiter};
use ragd::config::Settings;
use ragd::domain::{Email, Password, Role};
use ragd::secret::Secret;
use ragd::services::auth::accounts::Accounts;
use ragd::services::auth::jwt::JwtKeys;
use tokio::runtime::Runtime;

const SECRET: &str = "bench-secret-key-that-is-long-enough-for-hs256-0123456789";

/// Times `iters` sequential awaits of `op` on the runtime (one `block_on` for all of them, so
/// entering the runtime is not part of the figure).
fn timed<F, Fut>(runtime: &Runtime, iters: u64, mut op: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    runtime.block_on(async {
        let started = Instant::now();
        for i in 0..iters {
            op(i).await;
        }
        started.elapsed()
    })
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

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
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
    let settings = Settings::from_map(&values).unwrap();
    let app = runtime.block_on(App::build(settings.clone())).unwrap();
    let address = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    // Serving also starts the revocation follower, without which the cache is not trusted.
    runtime.spawn(app.serve_until(std::future::pending()));

    let accounts = state.accounts.clone();
    let (jwt, key) = runtime.block_on(async {
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
        // Let the follower read the revocation log once, so cached answers are trusted.
        tokio::time::sleep(Duration::from_secs(1)).await;
        (jwt, key)
    });
    let uncached = Accounts::new(
        state.store.clone(),
        &Secret::new(SECRET.to_owned()),
        settings.access_token_ttl,
        true,
        Duration::ZERO,
    );

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(budget)
        .configure_from_args();
    let keys = JwtKeys::new(&Secret::new(SECRET.to_owned()));
    criterion.bench_function("jwt_verify", |b| b.iter(|| keys.verify(&jwt).unwrap()));
    for (name, token) in [("jwt", &jwt), ("api_key", &key)] {
        criterion.bench_function(&format!("authenticate_{name}_cached"), |b| {
            b.iter_custom(|iters| {
                timed(&runtime, iters, |_| async {
                    accounts.authenticate(token).await.unwrap();
                })
            })
        });
        criterion.bench_function(&format!("authenticate_{name}_from_database"), |b| {
            b.iter_custom(|iters| {
                timed(&runtime, iters, |_| async {
                    uncached.authenticate(token).await.unwrap();
                })
            })
        });
    }

    let quota = Quota {
        per_minute: NonZeroU32::new(1_000_000).unwrap(),
    };
    let memory = MemoryRateLimiter::default();
    criterion.bench_function("limiter_check_memory_1000_keys", |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, |i| {
                let memory = &memory;
                async move {
                    memory
                        .check(&format!("user:{}", i % 1000), quota, 1)
                        .await
                        .unwrap();
                }
            })
        })
    });
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let redis: Arc<dyn RateLimiter> = Arc::new(RedisRateLimiter::new(
                runtime.block_on(connect(&url)).unwrap(),
            ));
            criterion.bench_function("limiter_check_redis_1000_keys", |b| {
                b.iter_custom(|iters| {
                    timed(&runtime, iters, |i| {
                        let redis = redis.clone();
                        async move {
                            redis
                                .check(&format!("bench:user:{}", i % 1000), quota, 1)
                                .await
                                .unwrap();
                        }
                    })
                })
            });
        }
        _ => println!("limiter_check_redis: skipped (REDIS_URL unset)"),
    }
    criterion.final_summary();

    println!("\nover HTTP (reqwest client in the same process, 2 shared cores):");
    runtime.block_on(async {
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
    });
}
