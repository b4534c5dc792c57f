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
