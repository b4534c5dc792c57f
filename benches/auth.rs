//! What authentication and rate limiting cost per request: criterion microbenchmarks of the
//! pieces in process (JWT verify; resolving an access token or an API key from the credential
//! cache and, cache off, from the database; a limiter check in memory and through Redis) and,
//! over real sockets under wrk, requests/s of `/health` against the same handler behind the
//! authentication and rate-limit layer (and against `/api/v1/auth/me`).
//!
//! Run on demand: `cargo bench --bench auth` (with `REDIS_URL` set to also measure Redis;
//! `AUTH_BENCH_SECONDS` sets each wrk run's length, default 5); figures go into
//! docs/benchmarks.md. To keep wrk off the server's CPU, run the bench on some cores and wrk
//! on others: `AUTH_BENCH_WRK_CPUS=1 taskset -c 0 cargo bench --bench auth` (wrk then runs
//! under `taskset -c 1`).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark reports on stdout and stops at the first failure"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use criterion::Criterion;
use ragd::app::{App, AppState};
use ragd::cache::memory::MemoryRateLimiter;
use ragd::cache::redis::{RedisRateLimiter, connect};
use ragd::cache::{Quota, RateLimiter};
use ragd::config::Settings;
use ragd::domain::{Email, Password, Role};
use ragd::http::apply_layers;
use ragd::http::middleware::rate_limit::RateLimitLayer;
use ragd::routes::health::Health;
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

/// `/health`'s handler, reproduced: the A/B below serves it at `/health` and, behind the
/// authentication and rate-limit layer, at `/api/v1/ping`, so the two differ by that layer only.
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Serves `/health` and `/api/v1/ping` through ragd's own layer stack on a free port.
async fn serve_ab(state: AppState) -> String {
    let routes = Router::new()
        .route("/health", get(health))
        .route("/api/v1/ping", get(health))
        .route_layer(RateLimitLayer::new(&state))
        .with_state(state.clone());
    let app = apply_layers(routes, &state.settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    address
}

/// This process's CPU time so far (user + system), from `/proc/self/stat`.
fn process_cpu_seconds(ticks_per_second: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / ticks_per_second
}

/// One wrk run: requests/s and this process's (the server's) CPU microseconds per request.
fn wrk(url: &str, token: Option<&str>, seconds: u64, ticks_per_second: f64) -> (f64, f64) {
    let mut command = match std::env::var("AUTH_BENCH_WRK_CPUS") {
        Ok(cpus) => {
            let mut pinned = std::process::Command::new("taskset");
            pinned.args(["-c", &cpus, "wrk"]);
            pinned
        }
        Err(_) => std::process::Command::new("wrk"),
    };
    command.args(["-t2", "-c64", &format!("-d{seconds}s"), url]);
    if let Some(token) = token {
        command.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    let before = process_cpu_seconds(ticks_per_second);
    let output = command.output().unwrap();
    let cpu = process_cpu_seconds(ticks_per_second) - before;
    let report = String::from_utf8_lossy(&output.stdout);
    let number_after = |label: &str| -> f64 {
        let line = report.lines().find(|line| line.contains(label)).unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        let position = words.iter().position(|word| *word == label).unwrap();
        words[position - 1].parse().unwrap()
    };
    let requests = number_after("requests");
    assert!(
        !report.contains("Non-2xx"),
        "{url} answered errors:\n{report}"
    );
    (requests / seconds as f64, cpu / requests * 1e6)
}

/// Creates the account `<name>@example.com` and returns an access token and an API key for it.
async fn sign_up(accounts: &Accounts, name: &str) -> (String, String) {
    let email = format!("{name}@example.com");
    let password = "correct horse battery";
    let user = accounts
        .create(
            Email::parse(&email).unwrap(),
            Password::parse(password).unwrap(),
            Role::User,
        )
        .await
        .unwrap();
    let jwt = accounts.login(&email, password).await.unwrap().token;
    let key = accounts.create_api_key(user.id, name).await.unwrap().secret;
    (jwt.expose().to_owned(), key.expose().to_owned())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `/health` against the same handler behind authentication and limiting, and against
/// `/api/v1/auth/me`, under wrk; rounds alternate so drift in the machine's load hits all alike.
/// `ping` and `me`: an access token and an API key for each route, each of a user of its own.
fn compare_over_http(ab: &str, real: &str, ping: [&str; 2], me: [&str; 2]) {
    if std::process::Command::new("wrk")
        .arg("-v")
        .output()
        .is_err()
    {
        println!("\nover HTTP: skipped (wrk is not installed: apt-get install wrk)");
        return;
    }
    let seconds: u64 = std::env::var("AUTH_BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5);
    let rounds = 3;
    let ticks_per_second: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let mut cases = vec![("/health".to_owned(), format!("{ab}/health"), None)];
    for (route, url, [jwt, key]) in [
        ("/api/v1/ping", format!("{ab}/api/v1/ping"), ping),
        ("/api/v1/auth/me", format!("{real}/api/v1/auth/me"), me),
    ] {
        cases.push((format!("{route}, access token"), url.clone(), Some(jwt)));
        cases.push((format!("{route}, API key"), url, Some(key)));
    }
    let mut rates = vec![Vec::new(); cases.len()];
    let mut cpu = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, url, token)) in cases.iter().enumerate() {
            let (rate, micros) = wrk(url, *token, seconds, ticks_per_second);
            rates[i].push(rate);
            cpu[i].push(micros);
        }
    }
    println!(
        "\nover HTTP: wrk -t2 -c64, {rounds} alternating rounds of {seconds} s, medians (server in this process):"
    );
    let baseline = median(rates[0].clone());
    for (i, (label, _, _)) in cases.iter().enumerate() {
        let rate = median(rates[i].clone());
        println!(
            "{label:<32} {rate:>9.0} req/s ({:>5.1}% of /health) {:>6.1} us CPU/request",
            100.0 * rate / baseline,
            median(cpu[i].clone()),
        );
    }
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
    // One user per use: at 50,000 requests/s a single user would run through even the
    // largest quota (RATE_LIMIT_PER_MINUTE=1000000) within the HTTP rounds.
    let [(jwt, key), ping_jwt, ping_key, me_jwt, me_key] = runtime.block_on(async {
        let mut users = Vec::new();
        for name in ["bench", "ping-jwt", "ping-key", "me-jwt", "me-key"] {
            users.push(sign_up(&accounts, name).await);
        }
        // Let the follower read the revocation log once, so cached answers are trusted.
        tokio::time::sleep(Duration::from_secs(1)).await;
        <[_; 5]>::try_from(users).unwrap()
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

    let ab = runtime.block_on(serve_ab(state));
    compare_over_http(
        &ab,
        &address,
        [&ping_jwt.0, &ping_key.1],
        [&me_jwt.0, &me_key.1],
    );
}
