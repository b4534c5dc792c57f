//! One typed settings tree, read from the environment (and a `.env` file) once at start-up.
//!
//! Every variable has a default that lets `ragd` run with nothing set. A bad value stops
//! start-up with one line that names the variable and says what is expected. The table in
//! [`VARIABLES`] is the single source of truth for names, defaults and meanings: `ragd config
//! check`, the README and `.env.example` are all checked against it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::secret::Secret;

/// A variable ragd reads: its name, default (as the user would write it) and meaning.
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
    pub secret: bool,
}

const fn var(name: &'static str, default: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        default,
        meaning,
        secret: false,
    }
}

const fn secret(name: &'static str, meaning: &'static str) -> Variable {
    Variable {
        name,
        default: "",
        meaning,
        secret: true,
    }
}

/// Every configuration variable, in the order `config check` and `.env.example` show them.
pub const VARIABLES: &[Variable] = &[
    var("HOST", "127.0.0.1", "listen address"),
    var("PORT", "8000", "listen port (0 picks a free one)"),
    var(
        "DATA_DIR",
        "./data",
        "where the SQLite database, the generated secret key and uploaded files live",
    ),
    var(
        "DATABASE_URL",
        "sqlite://data/ragd.db",
        "sqlite://PATH (embedded) or postgres://... (pgvector)",
    ),
    var("DATABASE_MAX_CONNECTIONS", "16", "connection pool size"),
    var(
        "REDIS_URL",
        "",
        "when set: rate limits and the embedding cache are shared by all replicas",
    ),
    secret(
        "SECRET_KEY",
        "JWT signing key, at least 32 bytes; generated once into DATA_DIR/secret_key when unset",
    ),
    var(
        "ACCESS_TOKEN_EXPIRE_MINUTES",
        "30",
        "JWT lifetime in minutes",
    ),
    var(
        "AUTH_CACHE_SECONDS",
        "300",
        "how long a replica may reuse a resolved API key or access token without reading the database (revocations still reach every replica within about a second); 0 reads it on every request",
    ),
    var(
        "ALLOW_REGISTRATION",
        "true",
        "whether POST /api/v1/auth/register is open",
    ),
    var(
        "RATE_LIMIT_PER_MINUTE",
        "60",
        "requests per user (or per client IP, unauthenticated) per minute",
    ),
    var(
        "RATE_LIMIT_FAIL_OPEN",
        "true",
        "when Redis is down: admit requests (true) or refuse them with 503 (false)",
    ),
    var(
        "TRUSTED_PROXIES",
        "",
        "comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For names the client (for per-address limits); unset: the TCP peer is the client",
    ),
    var(
        "TOKEN_LIMIT_PER_MINUTE",
        "",
        "LLM tokens per user per minute; unset means no token limit",
    ),
    secret("OPENAI_API_KEY", "key for the OpenAI-compatible provider"),
    var(
        "OPENAI_BASE_URL",
        "https://api.openai.com/v1",
        "any OpenAI-compatible server",
    ),
    var(
        "OLLAMA_BASE_URL",
        "",
        "Ollama, e.g. http://localhost:11434; models named ollama/NAME",
    ),
    secret(
        "ANTHROPIC_API_KEY",
        "key for Anthropic; models named anthropic/NAME or claude-*",
    ),
    var(
        "ANTHROPIC_BASE_URL",
        "https://api.anthropic.com",
        "Anthropic API base URL",
    ),
    var(
        "DEFAULT_MODEL",
        "",
        "model used when a request names none; default: the first configured provider's, else local/extractive",
    ),
    var(
        "FALLBACK_MODELS",
        "",
        "comma-separated models tried in order when a provider fails before answering",
    ),
    var(
        "EMBEDDING_MODEL",
        "local/hashed-ngrams",
        "e.g. text-embedding-3-small, ollama/nomic-embed-text",
    ),
    var(
        "VECTOR_DIMENSION",
        "",
        "embedding width; default from the model, checked against it at start-up",
    ),
    var(
        "PGVECTOR_HNSW",
        "true",
        "PostgreSQL: search through an HNSW index (false: exact scans, for pgvector builds whose HNSW fails on this CPU)",
    ),
    var(
        "PGVECTOR_EF_SEARCH",
        "40",
        "PostgreSQL: candidates an HNSW search keeps (1-1000); higher finds more of the true nearest chunks, slower",
    ),
    var(
        "SEARCH_INDEX_MEMORY_MB",
        "512",
        "SQLite: memory for users' chunks held for search, vectors and words (~0.75 MiB per 1,000 384-d chunks of 60 words); users beyond it are searched by SQLite alone",
    ),
    var(
        "LLM_TIMEOUT_SECONDS",
        "60",
        "total timeout of one upstream LLM call",
    ),
    var(
        "LLM_IDLE_TIMEOUT_SECONDS",
        "",
        "a streamed answer silent this long is cut (default: LLM_TIMEOUT_SECONDS); lets long answers run under a large total timeout while stalls end soon",
    ),
    var(
        "LLM_TTFT_TIMEOUT_SECONDS",
        "",
        "fail over when no first token arrives within this many seconds",
    ),
    var(
        "LLM_MAX_RETRIES",
        "2",
        "retries of a failed upstream call before the first byte reached the client",
    ),
    var(
        "LOG_PROMPTS",
        "false",
        "include prompt text in LLM call logs",
    ),
    var("MAX_UPLOAD_MB", "100", "upload size limit in MiB"),
    var(
        "MAX_REQUEST_BODY_KB",
        "1024",
        "size limit of every JSON request body in KiB",
    ),
    var(
        "REQUEST_TIMEOUT_SECONDS",
        "120",
        "time limit for a handler to produce its response head; also the longest pause an upload's body may take",
    ),
    var(
        "UPLOAD_TIMEOUT_SECONDS",
        "3600",
        "time limit for a whole upload: its body arriving, then its storing",
    ),
    var(
        "SHUTDOWN_GRACE_SECONDS",
        "30",
        "how long in-flight requests may run after SIGTERM/SIGINT",
    ),
    var(
        "INGEST_WORKERS",
        "",
        "background ingestion workers; default: the number of cores",
    ),
    var(
        "INGEST_MAX_ATTEMPTS",
        "3",
        "attempts before a document is marked failed",
    ),
    var("CHUNK_TOKENS", "512", "tokens per chunk"),
    var(
        "CHUNK_OVERLAP",
        "64",
        "tokens shared by neighbouring chunks",
    ),
    var("EMBEDDING_BATCH_SIZE", "100", "texts per embedding call"),
    var(
        "EMBEDDING_CACHE_TTL_SECONDS",
        "3600",
        "lifetime of cached embeddings in Redis",
    ),
    var(
        "CORS_ORIGINS",
        "http://localhost:3000",
        "comma-separated allowed origins (* for any)",
    ),
    var(
        "DOCS_ENABLED",
        "true",
        "serve /docs, /redoc and /openapi.json",
    ),
    var("METRICS_ENABLED", "true", "serve /metrics"),
    var("DEBUG", "false", "verbose logs (debug level)"),
    var("LOG_FORMAT", "json", "json or pretty"),
];

/// The text of `.env.example`: every variable with its meaning and default, commented out.
pub fn env_example() -> String {
    let mut text = String::from(
        "# ragd configuration. Every variable is optional: ragd runs with none set.\n\
         # Copy to .env in the working directory, or set in the environment (the environment wins).\n\
         # `ragd config check` prints the effective values, secrets redacted.\n\
         # Generated by `ragd config example`.\n",
    );
    for variable in VARIABLES {
        text.push_str(&format!(
            "\n# {}\n# {}={}\n",
            variable.meaning, variable.name, variable.default
        ));
    }
    text
}

/// A configuration value that cannot be used. Its Display is the one line start-up prints.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {expected}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub expected: String,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The storage backend, chosen by the scheme of `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// Embedded SQLite at this path.
    Sqlite(PathBuf),
    /// PostgreSQL with pgvector; the URL may carry a password, hence the Secret.
    Postgres(Secret),
}

impl DatabaseUrl {
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// The effective settings. Built by [`Settings::from_env`] or [`Settings::from_map`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    pub redis_url: Option<Secret>,
    /// Explicit key; `None` means "generate once and keep it in the data directory".
    pub secret_key: Option<Secret>,
    pub access_token_ttl: Duration,
    /// How long a resolved credential may be reused; zero turns the cache off.
    pub auth_cache_ttl: Duration,
    pub allow_registration: bool,
    pub rate_limit_per_minute: u32,
    pub rate_limit_fail_open: bool,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub token_limit_per_minute: Option<u32>,
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: String,
    pub ollama_base_url: Option<String>,
    pub anthropic_api_key: Option<Secret>,
    pub anthropic_base_url: String,
    pub default_model: Option<String>,
    pub fallback_models: Vec<String>,
    pub embedding_model: String,
    pub vector_dimension: Option<usize>,
    /// PostgreSQL: build and use an HNSW index for vector search (else exact scans).
    pub pgvector_hnsw: bool,
    /// PostgreSQL: `hnsw.ef_search`, the HNSW search's candidate list (at least the limit).
    pub pgvector_ef_search: u32,
    /// SQLite: the in-process vector index's memory budget in bytes.
    pub search_index_memory_bytes: usize,
    pub llm_timeout: Duration,
    /// Longest silence between two chunks of a streamed answer.
    pub llm_idle_timeout: Duration,
    pub llm_ttft_timeout: Option<Duration>,
    pub llm_max_retries: u32,
    pub log_prompts: bool,
    pub max_upload_bytes: u64,
    pub max_request_body_bytes: usize,
    pub request_timeout: Duration,
    pub upload_timeout: Duration,
    pub shutdown_grace: Duration,
    pub ingest_workers: usize,
    pub ingest_max_attempts: u32,
    pub chunk_tokens: usize,
    pub chunk_overlap: usize,
    pub embedding_batch_size: usize,
    pub embedding_cache_ttl: Duration,
    pub cors_origins: Vec<String>,
    pub docs_enabled: bool,
    pub metrics_enabled: bool,
    pub debug: bool,
    pub log_format: LogFormat,
}

/// Reads raw values and turns each into a typed one, naming the variable on failure.
struct Reader<'a> {
    values: &'a HashMap<String, String>,
}

impl Reader<'_> {
    /// The raw value, or the table's default; empty counts as unset.
    fn raw(&self, name: &'static str) -> String {
        match self.values.get(name).map(|v| v.trim()) {
            Some(value) if !value.is_empty() => value.to_string(),
            _ => VARIABLES
                .iter()
                .find(|v| v.name == name)
                .map(|v| v.default.to_string())
                .unwrap_or_default(),
        }
    }

    fn optional(&self, name: &'static str) -> Option<String> {
        Some(self.raw(name)).filter(|v| !v.is_empty())
    }

    fn parse<T: FromStr>(&self, name: &'static str, expected: &str) -> Result<T, ConfigError> {
        let value = self.raw(name);
        value.parse().map_err(|_| invalid(name, &value, expected))
    }

    fn parse_optional<T: FromStr>(
        &self,
        name: &'static str,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.optional(name)
            .map(|value| value.parse().map_err(|_| invalid(name, &value, expected)))
            .transpose()
    }

    fn number_in<T>(&self, name: &'static str, min: T, max: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let expected = format!("a whole number from {min} to {max}");
        let value: T = self.parse(name, &expected)?;
        if value < min || value > max {
            return Err(invalid(name, &self.raw(name), &expected));
        }
        Ok(value)
    }

    fn seconds(&self, name: &'static str, max: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.number_in(name, 1, max)?))
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        let value = self.raw(name);
        match value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(invalid(name, &value, "true or false")),
        }
    }

    fn secret(&self, name: &'static str) -> Option<Secret> {
        self.optional(name).map(Secret::new)
    }

    fn url(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match self.optional(name) {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(Some(url.trim_end_matches('/').to_string()))
            }
            Some(url) => Err(invalid(name, &url, "an http:// or https:// URL")),
            None => Ok(None),
        }
    }

    /// A list of addresses (`10.0.0.2`, a single host) or CIDR ranges (`10.0.0.0/8`).
    fn networks(&self, name: &'static str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.list(name)
            .iter()
            .map(|item| {
                item.parse::<ipnet::IpNet>()
                    .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(name, item, "IP addresses or CIDR ranges, comma-separated")
                    })
            })
            .collect()
    }

    fn list(&self, name: &'static str) -> Vec<String> {
        self.raw(name)
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect()
    }
}

fn invalid(variable: &'static str, value: &str, expected: &str) -> ConfigError {
    ConfigError {
        variable,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// The shortest signing key start-up accepts: HS256 wants at least the hash's 32 bytes.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

impl Settings {
    /// Reads the process environment, after loading `.env` from the working directory (values
    /// already in the environment win).
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is the normal case; a malformed one is reported by the variables it breaks.
        let _ = dotenvy::dotenv();
        Self::from_map(&std::env::vars().collect())
    }

    /// Builds settings from explicit values (tests, and `from_env`).
    pub fn from_map(values: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let r = Reader { values };
        let data_dir = PathBuf::from(r.raw("DATA_DIR"));
        let secret_key = r.secret("SECRET_KEY");
        if let Some(key) = &secret_key
            && key.expose().len() < MIN_SECRET_KEY_BYTES
        {
            return Err(invalid(
                "SECRET_KEY",
                "****",
                &format!("at least {MIN_SECRET_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)"),
            ));
        }
        let redis_url = match r.secret("REDIS_URL") {
            Some(url)
                if !(url.expose().starts_with("redis://")
                    || url.expose().starts_with("rediss://")) =>
            {
                return Err(invalid("REDIS_URL", "****", "a redis:// or rediss:// URL"));
            }
            other => other,
        };
        let chunk_tokens = r.number_in("CHUNK_TOKENS", 32, 8192)?;
        let chunk_overlap = r.number_in("CHUNK_OVERLAP", 0, 4096)?;
        if chunk_overlap >= chunk_tokens {
            return Err(invalid(
                "CHUNK_OVERLAP",
                &chunk_overlap.to_string(),
                "fewer tokens than CHUNK_TOKENS",
            ));
        }
        let log_format = match r.raw("LOG_FORMAT").to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => return Err(invalid("LOG_FORMAT", other, "json or pretty")),
        };
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            host: r.parse("HOST", "an IP address such as 127.0.0.1 or 0.0.0.0")?,
            port: r.parse("PORT", "a port number from 0 to 65535")?,
            database_url: parse_database_url(&r.raw("DATABASE_URL"))?,
            database_max_connections: r.number_in("DATABASE_MAX_CONNECTIONS", 1, 1000)?,
            data_dir,
            redis_url,
            secret_key,
            access_token_ttl: Duration::from_secs(
                60 * r.number_in::<u64>("ACCESS_TOKEN_EXPIRE_MINUTES", 1, 525_600)?,
            ),
            auth_cache_ttl: Duration::from_secs(r.number_in("AUTH_CACHE_SECONDS", 0, 86_400)?),
            allow_registration: r.flag("ALLOW_REGISTRATION")?,
            rate_limit_per_minute: r.number_in("RATE_LIMIT_PER_MINUTE", 1, 1_000_000)?,
            rate_limit_fail_open: r.flag("RATE_LIMIT_FAIL_OPEN")?,
            trusted_proxies: r.networks("TRUSTED_PROXIES")?,
            token_limit_per_minute: r
                .parse_optional("TOKEN_LIMIT_PER_MINUTE", "a whole number of tokens")?,
            openai_api_key: r.secret("OPENAI_API_KEY"),
            openai_base_url: r.url("OPENAI_BASE_URL")?.unwrap_or_default(),
            ollama_base_url: r.url("OLLAMA_BASE_URL")?,
            anthropic_api_key: r.secret("ANTHROPIC_API_KEY"),
            anthropic_base_url: r.url("ANTHROPIC_BASE_URL")?.unwrap_or_default(),
            default_model: r.optional("DEFAULT_MODEL"),
            fallback_models: r.list("FALLBACK_MODELS"),
            embedding_model: r.raw("EMBEDDING_MODEL"),
            vector_dimension: match r.optional("VECTOR_DIMENSION") {
                Some(_) => Some(r.number_in("VECTOR_DIMENSION", 8, 16_000)?),
                None => None,
            },
            pgvector_hnsw: r.flag("PGVECTOR_HNSW")?,
            pgvector_ef_search: r.number_in("PGVECTOR_EF_SEARCH", 1, 1000)?,
            search_index_memory_bytes: r.number_in::<usize>(
                "SEARCH_INDEX_MEMORY_MB",
                0,
                1_048_576,
            )? * 1024
                * 1024,
            llm_timeout: r.seconds("LLM_TIMEOUT_SECONDS", 3600)?,
            llm_idle_timeout: match r.optional("LLM_IDLE_TIMEOUT_SECONDS") {
                Some(_) => r.seconds("LLM_IDLE_TIMEOUT_SECONDS", 3600)?,
                None => r.seconds("LLM_TIMEOUT_SECONDS", 3600)?,
            },
            llm_ttft_timeout: match r.optional("LLM_TTFT_TIMEOUT_SECONDS") {
                Some(_) => Some(r.seconds("LLM_TTFT_TIMEOUT_SECONDS", 3600)?),
                None => None,
            },
            llm_max_retries: r.number_in("LLM_MAX_RETRIES", 0, 10)?,
            log_prompts: r.flag("LOG_PROMPTS")?,
            max_upload_bytes: r.number_in::<u64>("MAX_UPLOAD_MB", 1, 1_048_576)? * 1024 * 1024,
            max_request_body_bytes: r.number_in::<usize>("MAX_REQUEST_BODY_KB", 1, 1_048_576)?
                * 1024,
            request_timeout: r.seconds("REQUEST_TIMEOUT_SECONDS", 86_400)?,
            upload_timeout: r.seconds("UPLOAD_TIMEOUT_SECONDS", 86_400)?,
            shutdown_grace: Duration::from_secs(r.number_in("SHUTDOWN_GRACE_SECONDS", 0, 3600)?),
            ingest_workers: match r.optional("INGEST_WORKERS") {
                Some(_) => r.number_in("INGEST_WORKERS", 0, 256)?,
                None => cores,
            },
            ingest_max_attempts: r.number_in("INGEST_MAX_ATTEMPTS", 1, 100)?,
            chunk_tokens,
            chunk_overlap,
            embedding_batch_size: r.number_in("EMBEDDING_BATCH_SIZE", 1, 2048)?,
            embedding_cache_ttl: r.seconds("EMBEDDING_CACHE_TTL_SECONDS", 31_536_000)?,
            cors_origins: r.list("CORS_ORIGINS"),
            docs_enabled: r.flag("DOCS_ENABLED")?,
            metrics_enabled: r.flag("METRICS_ENABLED")?,
            debug: r.flag("DEBUG")?,
            log_format,
        })
    }

    /// The effective configuration as `(VARIABLE, value)` rows, secrets shown as stars.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let shown = |secret: &Option<Secret>| match secret {
            Some(_) => "****".to_string(),
            None => "(unset)".to_string(),
        };
        let optional = |value: Option<String>| value.unwrap_or_else(|| "(unset)".into());
        let database = match &self.database_url {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => redact_url_password(url.expose()),
        };
        vec![
            ("HOST", self.host.to_string()),
            ("PORT", self.port.to_string()),
            ("DATA_DIR", self.data_dir.display().to_string()),
            ("DATABASE_URL", database),
            (
                "DATABASE_MAX_CONNECTIONS",
                self.database_max_connections.to_string(),
            ),
            (
                "REDIS_URL",
                optional(
                    self.redis_url
                        .as_ref()
                        .map(|u| redact_url_password(u.expose())),
                ),
            ),
            (
                "SECRET_KEY",
                match &self.secret_key {
                    Some(_) => "****".into(),
                    None => format!("(generated, kept in {})", self.secret_key_path().display()),
                },
            ),
            (
                "ACCESS_TOKEN_EXPIRE_MINUTES",
                (self.access_token_ttl.as_secs() / 60).to_string(),
            ),
            (
                "AUTH_CACHE_SECONDS",
                self.auth_cache_ttl.as_secs().to_string(),
            ),
            ("ALLOW_REGISTRATION", self.allow_registration.to_string()),
            (
                "RATE_LIMIT_PER_MINUTE",
                self.rate_limit_per_minute.to_string(),
            ),
            (
                "RATE_LIMIT_FAIL_OPEN",
                self.rate_limit_fail_open.to_string(),
            ),
            (
                "TRUSTED_PROXIES",
                optional(
                    Some(
                        self.trusted_proxies
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(","),
                    )
                    .filter(|list| !list.is_empty()),
                ),
            ),
            (
                "TOKEN_LIMIT_PER_MINUTE",
                optional(self.token_limit_per_minute.map(|v| v.to_string())),
            ),
            ("OPENAI_API_KEY", shown(&self.openai_api_key)),
            ("OPENAI_BASE_URL", self.openai_base_url.clone()),
            ("OLLAMA_BASE_URL", optional(self.ollama_base_url.clone())),
            ("ANTHROPIC_API_KEY", shown(&self.anthropic_api_key)),
            ("ANTHROPIC_BASE_URL", self.anthropic_base_url.clone()),
            ("DEFAULT_MODEL", optional(self.default_model.clone())),
            ("FALLBACK_MODELS", self.fallback_models.join(",")),
            ("EMBEDDING_MODEL", self.embedding_model.clone()),
            (
                "VECTOR_DIMENSION",
                optional(self.vector_dimension.map(|v| v.to_string())),
            ),
            ("PGVECTOR_HNSW", self.pgvector_hnsw.to_string()),
            ("PGVECTOR_EF_SEARCH", self.pgvector_ef_search.to_string()),
            (
                "SEARCH_INDEX_MEMORY_MB",
                (self.search_index_memory_bytes / 1024 / 1024).to_string(),
            ),
            (
                "LLM_TIMEOUT_SECONDS",
                self.llm_timeout.as_secs().to_string(),
            ),
            (
                "LLM_IDLE_TIMEOUT_SECONDS",
                self.llm_idle_timeout.as_secs().to_string(),
            ),
            (
                "LLM_TTFT_TIMEOUT_SECONDS",
                optional(self.llm_ttft_timeout.map(|d| d.as_secs().to_string())),
            ),
            ("LLM_MAX_RETRIES", self.llm_max_retries.to_string()),
            ("LOG_PROMPTS", self.log_prompts.to_string()),
            (
                "MAX_UPLOAD_MB",
                (self.max_upload_bytes / 1024 / 1024).to_string(),
            ),
            (
                "MAX_REQUEST_BODY_KB",
                (self.max_request_body_bytes / 1024).to_string(),
            ),
            (
                "REQUEST_TIMEOUT_SECONDS",
                self.request_timeout.as_secs().to_string(),
            ),
            (
                "UPLOAD_TIMEOUT_SECONDS",
                self.upload_timeout.as_secs().to_string(),
            ),
            (
                "SHUTDOWN_GRACE_SECONDS",
                self.shutdown_grace.as_secs().to_string(),
            ),
            ("INGEST_WORKERS", self.ingest_workers.to_string()),
            ("INGEST_MAX_ATTEMPTS", self.ingest_max_attempts.to_string()),
            ("CHUNK_TOKENS", self.chunk_tokens.to_string()),
            ("CHUNK_OVERLAP", self.chunk_overlap.to_string()),
            (
                "EMBEDDING_BATCH_SIZE",
                self.embedding_batch_size.to_string(),
            ),
            (
                "EMBEDDING_CACHE_TTL_SECONDS",
                self.embedding_cache_ttl.as_secs().to_string(),
            ),
            ("CORS_ORIGINS", self.cors_origins.join(",")),
            ("DOCS_ENABLED", self.docs_enabled.to_string()),
            ("METRICS_ENABLED", self.metrics_enabled.to_string()),
            ("DEBUG", self.debug.to_string()),
            (
                "LOG_FORMAT",
                match self.log_format {
                    LogFormat::Json => "json".into(),
                    LogFormat::Pretty => "pretty".into(),
                },
            ),
        ]
    }

    /// Where the generated signing key is kept when `SECRET_KEY` is unset.
    pub fn secret_key_path(&self) -> PathBuf {
        self.data_dir.join("secret_key")
    }

    /// Where uploaded files are stored.
    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }
}

fn parse_database_url(url: &str) -> Result<DatabaseUrl, ConfigError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            // Each pooled connection to :memory: would see its own empty database.
            return Err(invalid(
                "DATABASE_URL",
                url,
                "sqlite://PATH to a file (not :memory:)",
            ));
        }
        return Ok(DatabaseUrl::Sqlite(Path::new(path).to_path_buf()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseUrl::Postgres(Secret::new(url)));
    }
    Err(invalid(
        "DATABASE_URL",
        &redact_url_password(url),
        "sqlite://PATH or postgres://USER:PASSWORD@HOST/DB",
    ))
}

/// `scheme://user:pass@host` becomes `scheme://user:****@host`, for logs and `config check`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_map(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn nothing_set_gives_a_runnable_default() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.port, 8000);
        assert_eq!(s.database_url, DatabaseUrl::Sqlite("data/ragd.db".into()));
        assert_eq!(s.rate_limit_per_minute, 60);
        assert!(s.secret_key.is_none());
        assert_eq!(s.max_upload_bytes, 100 * 1024 * 1024);
        assert_eq!(s.pgvector_ef_search, 40);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("HOST", "not-an-ip"),
            ("DATABASE_URL", "mysql://x"),
            ("RATE_LIMIT_PER_MINUTE", "0"),
            ("SECRET_KEY", "short"),
            ("LOG_FORMAT", "xml"),
            ("DOCS_ENABLED", "maybe"),
            ("OPENAI_BASE_URL", "ftp://x"),
            ("CHUNK_OVERLAP", "600"),
            ("REDIS_URL", "http://x"),
            ("VECTOR_DIMENSION", "3"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("TRUSTED_PROXIES", "10.0.0.1, proxy.internal"),
            ("AUTH_CACHE_SECONDS", "-1"),
            ("PGVECTOR_EF_SEARCH", "0"),
            ("PGVECTOR_EF_SEARCH", "5000"),
        ] {
            let err = settings(&[(name, value)]).expect_err(name);
            assert_eq!(err.variable, name);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn a_stream_may_be_silent_as_long_as_a_call_may_take_unless_told_otherwise() {
        let s = settings(&[("LLM_TIMEOUT_SECONDS", "600")]).unwrap();
        assert_eq!(s.llm_idle_timeout, Duration::from_secs(600));
        let s = settings(&[
            ("LLM_TIMEOUT_SECONDS", "600"),
            ("LLM_IDLE_TIMEOUT_SECONDS", "20"),
        ])
        .unwrap();
        assert_eq!(
            (s.llm_timeout, s.llm_idle_timeout),
            (Duration::from_secs(600), Duration::from_secs(20))
        );
        assert!(settings(&[("LLM_IDLE_TIMEOUT_SECONDS", "0")]).is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let s = settings(&[("TRUSTED_PROXIES", " 10.0.0.2, 172.16.0.0/12 ,::1")]).unwrap();
        let listed: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(listed, ["10.0.0.2/32", "172.16.0.0/12", "::1/128"]);
        assert!(settings(&[]).unwrap().trusted_proxies.is_empty());
    }

    #[test]
    fn secrets_never_appear_in_the_description() {
        let s = settings(&[
            ("OPENAI_API_KEY", "sk-live-123"),
            ("SECRET_KEY", "0123456789abcdef0123456789abcdef"),
            ("DATABASE_URL", "postgres://ragd:hunter2@db/ragd"),
        ])
        .unwrap();
        let text = format!("{:?} {:?}", s.describe(), s);
        assert!(!text.contains("sk-live-123"));
        assert!(!text.contains("0123456789abcdef"));
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn every_variable_is_described_once() {
        let s = settings(&[]).unwrap();
        let described: Vec<_> = s.describe().into_iter().map(|(name, _)| name).collect();
        let table: Vec<_> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(described, table);
    }
}
