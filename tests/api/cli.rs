//! The binary's command line: configuration errors name the variable, `config check` redacts.

use std::process::Command;

fn ragd(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ragd"));
    command
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_naming_the_variable() {
    let output = ragd(&["serve"], &[("PORT", "eighty")]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PORT") && stderr.contains("eighty"),
        "{stderr}"
    );
}

#[test]
fn config_check_prints_the_effective_configuration_with_secrets_redacted() {
    let output = ragd(
        &["config", "check"],
        &[
            ("OPENAI_API_KEY", "sk-live-abcdef"),
            ("DATABASE_URL", "postgres://ragd:hunter2@db:5432/ragd"),
        ],
    );
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("OPENAI_API_KEY") && stdout.contains("****"),
        "{stdout}"
    );
    assert!(
        stdout.contains("postgres://ragd:****@db:5432/ragd"),
        "{stdout}"
    );
    assert!(!stdout.contains("sk-live-abcdef") && !stdout.contains("hunter2"));
    assert!(stdout.contains("configuration is valid"));
}

#[test]
fn a_dot_env_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "RATE_LIMIT_PER_MINUTE=7\nCHUNK_TOKENS=300\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ragd"))
        .args(["config", "check"])
        .current_dir(dir.path())
        .env_clear()
        .env("CHUNK_TOKENS", "256")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("RATE_LIMIT_PER_MINUTE") && l.ends_with(" 7")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("CHUNK_TOKENS") && l.ends_with(" 256")),
        "{stdout}"
    );
}

#[test]
fn migrate_creates_the_database_and_version_prints() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/db/ragd.db", dir.path().display());
    let output = ragd(&["migrate"], &[("DATABASE_URL", &url)]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("db/ragd.db").exists());
    let version = ragd(&["--version"], &[]);
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_committed_env_example_lists_every_variable() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example")).unwrap();
    assert_eq!(
        committed,
        ragd::config::env_example(),
        "regenerate with `ragd config example > .env.example`"
    );
}

#[tokio::test]
async fn ingest_loads_a_directory_for_a_user_and_summarises_failures() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().display().to_string();
    let database_url = format!("sqlite://{data_dir}/ragd.db");
    let mut values = std::collections::HashMap::new();
    values.insert("DATA_DIR".to_owned(), data_dir.clone());
    values.insert("DATABASE_URL".to_owned(), database_url.clone());
    let settings = ragd::config::Settings::from_map(&values).unwrap();
    let store = ragd::store::connect(&settings).await.unwrap();
    store
        .create_user(ragd::store::NewUser {
            email: "ada@example.com".into(),
            password_hash: "x".into(),
            role: "user".into(),
        })
        .await
        .unwrap();
    store.close().await;

    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let output = tokio::task::spawn_blocking(move || {
        let env = [
            ("DATA_DIR", data_dir.as_str()),
            ("DATABASE_URL", database_url.as_str()),
            ("INGEST_WORKERS", "2"),
        ];
        ragd(&["ingest", fixtures, "--user", "Ada@example.com"], &env)
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The five samples; the three hostile files and generate.py (an unsupported type) fail.
    assert!(stdout.contains("5 ready"), "{stdout}\n{stderr}");
    assert!(stdout.contains("4 failed"), "{stdout}");
    assert!(stdout.contains("encrypted.pdf"), "{stdout}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "failures make a non-zero exit"
    );
}
