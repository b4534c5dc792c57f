//! SIGTERM on the real binary: ragd stops accepting, lets the request in flight finish, and
//! exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BOUNDARY: &str = "ragd-shutdown-boundary";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ragd"))
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("PORT", port.to_string())
        .env("DATA_DIR", dir.join("data"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/data/ragd.db", dir.display()),
        )
        .env("SHUTDOWN_GRACE_SECONDS", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_until_healthy(base: &str) {
    let started = Instant::now();
    while reqwest::get(format!("{base}/health")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ragd did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn token(base: &str) -> String {
    let client = reqwest::Client::new();
    let credentials =
        serde_json::json!({"email": "slow@example.com", "password": "correct horse battery"});
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let body: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn wait_for_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "ragd did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut ragd = start(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&base).await;
    let token = token(&base).await;

    // An upload whose body arrives in two halves, with SIGTERM in between.
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nThe in-flight upload survives the shutdown signal.\r\n--{BOUNDARY}--\r\n"
    );
    let (first, second) = body.as_bytes().split_at(body.len() / 2);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/documents/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(first).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let killed = Command::new("kill")
        .args(["-TERM", &ragd.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        reqwest::get(format!("{base}/health")).await.is_err(),
        "no new connections once shutting down"
    );

    stream.write_all(second).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");

    let status = wait_for_exit(&mut ragd, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
}
