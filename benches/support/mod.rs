//! What the end-to-end benches share: an in-process mock upstream server, the release `ragd`
//! binary started as a child against it, and a bearer token for one registered user.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use serde_json::{Value, json};

/// Serves `router` on a fresh local port (with ragd's listen backlog, so the mock is not the
/// bottleneck when thousands of connections arrive at once); returns the OpenAI-style base URL (`.../v1`).
pub async fn serve_upstream(router: Router) -> String {
    let listener = ragd::app::bind_listener(([127, 0, 0, 1], 0).into()).unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/v1")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ragd` child, killed when dropped (also when the bench panics).
pub struct Ragd(Child);

impl Ragd {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Ragd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The release `ragd` as a child on `port`: SQLite in `dir`, OpenAI provider at `upstream`
/// answering `model` by default, a rate limit that never bites, warnings only, output discarded.
/// It inherits this process's limits (open files included).
/// `env` adds variables of the bench's own.
pub fn start_ragd(
    dir: &Path,
    port: u16,
    upstream: &str,
    model: &str,
    env: &[(&str, &Path)],
) -> Ragd {
    let child = ragd_command()
        .envs(env.iter().copied())
        .current_dir(dir)
        .env("PORT", port.to_string())
        .env("DATA_DIR", dir.join("data"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/data/ragd.db", dir.display()),
        )
        .env("OPENAI_BASE_URL", upstream)
        .env("OPENAI_API_KEY", "sk-bench")
        .env("DEFAULT_MODEL", model)
        .env("RATE_LIMIT_PER_MINUTE", "1000000")
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ragd starts");
    Ragd(child)
}

/// The `ragd` binary, or with `BENCH_WRAPPER` set (`heaptrack`, `valgrind --tool=massif`, ...)
/// that command with the binary as its last argument, to profile ragd under the benchmark's load.
/// The environment is cleared either way (the wrapper keeps `PATH`), so only what the benchmark
/// sets reaches ragd.
fn ragd_command() -> Command {
    let binary = env!("CARGO_BIN_EXE_ragd");
    let wrapper = std::env::var("BENCH_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let Some(program) = words.next() else {
        let mut command = Command::new(binary);
        command.env_clear();
        return command;
    };
    let mut command = Command::new(program);
    command.args(words).arg(binary).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

/// Waits up to 30 s for `/health` to answer.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "ragd did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers one user and returns a JWT for it.
pub async fn token_for(client: &reqwest::Client, base: &str) -> String {
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

/// utime + stime of a process, in seconds (at the kernel's 100 ticks a second).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
