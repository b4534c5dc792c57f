//! `ragd user create|list|delete`: operators manage accounts against the database, and the
//! server sees the result.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::helpers::{Backend, assert_error, first_refusal, spawn_settings, test_settings};

struct Output {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn ragd(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ragd"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/ragd.db", dir.display()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = child.wait_with_output().await.unwrap();
    Output {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn operators_create_list_and_delete_accounts_that_the_server_then_sees() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let create = [
        "user",
        "create",
        "--email",
        "Ada@Example.com",
        "--password-stdin",
    ];

    let created = ragd(
        &path,
        &[&create[..], &["--admin"]].concat(),
        "correct horse battery\n",
    )
    .await;
    assert!(created.success, "{}", created.stderr);
    assert!(
        created
            .stdout
            .starts_with("created ada@example.com (admin) "),
        "{}",
        created.stdout
    );
    let again = ragd(&path, &create, "another password\n").await;
    assert!(!again.success);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    let short = ragd(
        &path,
        &[
            "user",
            "create",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        "short\n",
    )
    .await;
    assert!(!short.success);
    assert!(short.stderr.contains("at least 8"), "{}", short.stderr);
    let no_stdin_flag = ragd(&path, &["user", "create", "--email", "bob@example.com"], "").await;
    assert_eq!(no_stdin_flag.code, Some(2), "{}", no_stdin_flag.stderr);

    let listed = ragd(&path, &["user", "list"], "").await;
    assert!(listed.success, "{}", listed.stderr);
    let rows: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(rows.len(), 2, "{}", listed.stdout);
    assert!(
        rows[1].contains("\tada@example.com\tadmin\t"),
        "{}",
        rows[1]
    );
    assert!(!listed.stdout.contains("argon2"), "hashes are never listed");

    // The server on the same database logs the account in with the password from stdin.
    let settings = test_settings(Backend::Sqlite, &dir, &[]).await.unwrap();
    let uploads = settings.uploads_dir();
    let app = spawn_settings(settings, dir).await;
    let token: Value = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"email": "ada@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let me = |token: String| {
        app.client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(token)
            .send()
    };
    let account: Value = me(token.to_owned()).await.unwrap().json().await.unwrap();
    assert_eq!(account["role"], "admin");
    let upload = app
        .client
        .post(app.url("/api/v1/documents/upload"))
        .bearer_auth(token)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(
            "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nhello world\r\n--b--\r\n",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 202);
    let stored_files = || std::fs::read_dir(&uploads).map_or(0, Iterator::count);
    assert_eq!(stored_files(), 1);

    let deleted = ragd(&path, &["user", "delete", "ADA@example.com"], "").await;
    assert!(deleted.success, "{}", deleted.stderr);
    assert_eq!(stored_files(), 0, "the user's uploaded files go with them");
    // The server follows the revocation log the CLI wrote to, and drops its cached session.
    assert_error(
        first_refusal(|| async { me(token.to_owned()).await.unwrap() }).await,
        401,
        "unauthorized",
    )
    .await;
    let missing = ragd(&path, &["user", "delete", "ada@example.com"], "").await;
    assert!(!missing.success);
    assert!(
        missing.stderr.contains("no user ada@example.com"),
        "{}",
        missing.stderr
    );
    let listed = ragd(&path, &["user", "list"], "").await;
    assert_eq!(listed.stdout.lines().count(), 1, "{}", listed.stdout);
}
