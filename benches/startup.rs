//! Start-up and footprint of the release binary: time from process start to the first 200 on
//! `/health` (fresh data directory, and an existing one), and resident memory once idle.
//!
//! Run on demand: `cargo bench --bench startup` (figures go into docs/benchmarks.md).

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 20;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

fn start(data_dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ragd"))
        .current_dir(data_dir)
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATA_DIR", data_dir.join("data"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/data/ragd.db", data_dir.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start ragd: {err}"))
}

/// Polls `/health` over raw HTTP/1.1 until it answers 200; returns the time since `started`.
fn wait_for_health(port: u16, started: Instant) -> Duration {
    use std::io::{Read, Write};
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ =
                stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ragd did not become healthy"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_string)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn measure(label: &str, fresh: bool) {
    let mut times = Vec::with_capacity(RUNS);
    let mut rss = Vec::with_capacity(RUNS);
    let kept = tempfile::tempdir().unwrap_or_else(|err| panic!("temp dir: {err}"));
    for _ in 0..RUNS {
        let fresh_dir = tempfile::tempdir().unwrap_or_else(|err| panic!("temp dir: {err}"));
        let dir = if fresh { fresh_dir.path() } else { kept.path() };
        let port = free_port();
        let started = Instant::now();
        let mut child = start(dir, port);
        times.push(wait_for_health(port, started));
        std::thread::sleep(Duration::from_millis(500));
        rss.push(rss_kib(child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }
    times.sort();
    rss.sort();
    println!(
        "{label}: start to first 200 on /health: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms; idle RSS p50 {:.1} MiB, max {:.1} MiB ({RUNS} runs)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        rss[rss.len() / 2] as f64 / 1024.0,
        rss[rss.len() - 1] as f64 / 1024.0,
    );
}

fn main() {
    let size = std::fs::metadata(env!("CARGO_BIN_EXE_ragd"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "binary: {} ({:.1} MiB)",
        env!("CARGO_BIN_EXE_ragd"),
        size as f64 / 1024.0 / 1024.0
    );
    measure(
        "fresh data directory (creates the database, runs migrations, generates the key)",
        true,
    );
    measure("existing data directory", false);
}
