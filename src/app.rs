//! The application: its state, how it is assembled from settings, and how it serves until
//! told to stop.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};

use crate::cache::memory::MemoryRateLimiter;
use crate::cache::redis::{RedisKvCache, RedisRateLimiter};
use crate::cache::{KvCache, RateLimiter};
use crate::config::Settings;
use crate::services::auth::accounts::Accounts;
use crate::services::chat::{self, ChatService};
use crate::services::embeddings::{self, Embedder, EmbeddingError};
use crate::services::ingest::{ChunkSettingsError, Ingest};
use crate::services::llm::{LlmGateway, LlmSettings, ProviderError};
use crate::services::rate_limits::RateLimits;
use crate::services::retrieval::Retriever;
use crate::store::{self, Store, StoreError};
use crate::{http, signing_key};

/// Everything a handler may use ([`Services`], read through `Deref`: `state.chat`).
///
/// axum clones the state for every request, whether the handler asks for it or not. One shared
/// pointer makes that one reference count; a struct of a dozen `Arc`s was a dozen, bounced
/// between the worker threads' caches on every request.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The application's services, built once at start-up.
pub struct Services {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    /// Registration, login, and resolving bearer tokens to users.
    pub accounts: Arc<Accounts>,
    /// Every LLM provider behind one interface.
    pub llm: Arc<LlmGateway>,
    /// Turns texts into vectors for ingestion, search and `/v1/embeddings`.
    pub embedder: Arc<dyn Embedder>,
    /// Documents: upload, list, delete, reindex; owns the ingestion workers' pipeline.
    pub ingest: Arc<Ingest>,
    /// Search over the users' chunks, for /api/v1/search and grounded chat.
    pub retrieval: Arc<Retriever>,
    /// The raw limiter (in memory, or Redis shared by every replica), for any quota.
    pub limiter: Arc<dyn RateLimiter>,
    /// Request and login limits over `limiter`, with the fail-open/closed policy.
    pub rate_limits: Arc<RateLimits>,
    /// The key-value cache shared by replicas (Redis); `None` without `REDIS_URL`.
    pub cache: Option<Arc<dyn KvCache>>,
    /// Chat answers (whole or streamed) with grounding, token limits and usage accounting.
    pub chat: Arc<ChatService>,
}

impl AppState {
    /// Connects the backends, migrates, checks the embedder against the stored vectors and
    /// assembles the services, without listening: what `ragd ingest` runs on.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        crate::telemetry::init_metrics();
        let signing_key = signing_key::resolve(&settings)?;
        let llm = Arc::new(LlmGateway::new(llm_settings(&settings))?);
        let store = store::connect(&settings).await?;
        let (limiter, cache) = shared_backends(&settings)?;
        let embedder = embeddings::from_settings(&settings, llm.clone(), cache.clone()).await?;
        embeddings::check_stored_dimensions(embedder.as_ref(), &store.stored_embeddings().await?)?;
        let stale = store.reindex_stale_documents(embedder.model()).await?;
        if stale > 0 {
            tracing::info!(
                documents = stale,
                model = embedder.model(),
                "EMBEDDING_MODEL changed: reindexing in the background"
            );
        }
        store.prepare_vector_index(embedder.dimension()).await?;
        let ingest = Arc::new(Ingest::new(&settings, store.clone(), embedder.clone())?);
        let retrieval = Arc::new(Retriever::new(store.clone(), embedder.clone()));
        let chat = Arc::new(
            chat::from_settings(&settings, llm.clone(), store.clone(), limiter.clone())
                .with_grounding(retrieval.clone()),
        );
        let accounts = Arc::new(Accounts::new(
            store.clone(),
            &signing_key,
            settings.access_token_ttl,
            settings.allow_registration,
            settings.auth_cache_ttl,
        ));
        let rate_limits = Arc::new(RateLimits::new(
            limiter.clone(),
            settings.rate_limit_per_minute,
            settings.rate_limit_fail_open,
        ));
        Ok(Self(Arc::new(Services {
            settings: Arc::new(settings),
            store,
            accounts,
            llm,
            embedder,
            ingest,
            retrieval,
            limiter,
            rate_limits,
            cache,
            chat,
        })))
    }
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    SigningKey(#[from] signing_key::SigningKeyError),
    #[error("LLM providers: {0}")]
    Llm(#[from] ProviderError),
    #[error("embeddings: {0}")]
    Embeddings(#[from] EmbeddingError),
    #[error("REDIS_URL: {0}")]
    Cache(String),
    #[error("{0}")]
    Chunking(#[from] ChunkSettingsError),
}

/// Connections the kernel may hold completed but not yet accepted (capped by
/// `net.core.somaxconn`). The usual 128 overflows when thousands of clients connect at once,
/// and each dropped handshake costs its client a 1 s SYN retransmit.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `address` (address reuse on, as `TcpListener::bind` does) with `LISTEN_BACKLOG`.
pub fn bind_listener(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A built application bound to its port, ready to serve.
pub struct App {
    listener: TcpListener,
    state: AppState,
}

impl App {
    /// Connects the backends, migrates, binds the listener. Binding here (not in `serve`) is
    /// what lets tests learn the port of `PORT=0` before the first request.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let state = AppState::build(settings).await?;
        let address = SocketAddr::new(state.settings.host, state.settings.port);
        let listener =
            bind_listener(address).map_err(|source| StartError::Listen { address, source })?;
        Ok(Self { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Starts the ingestion workers and serves until `shutdown` completes, then lets in-flight
    /// requests finish for up to `SHUTDOWN_GRACE_SECONDS`, stops the workers (jobs in progress
    /// go back to the queue) and returns.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = self.state.settings.shutdown_grace;
        let store = self.state.store.clone();
        let chat = self.state.chat.clone();
        let workers = self.state.ingest.start_workers();
        let key_usage = self.state.accounts.start_key_usage_flusher();
        let revocations = self.state.accounts.start_revocation_follower();
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let router = http::router(self.state);
        let server = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!(
                grace_seconds = grace.as_secs(),
                "shutting down: finishing in-flight requests"
            );
            let _ = stopping_tx.send(());
        });
        let grace_expired = async move {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = server => result?,
            () = grace_expired => tracing::warn!("grace period over: dropping the remaining requests"),
        }
        workers.shutdown().await;
        key_usage.shutdown().await;
        if let Some(revocations) = revocations {
            revocations.shutdown().await;
        }
        chat.usage().shutdown().await;
        store.close().await;
        Ok(())
    }
}

/// The rate limiter, and the key-value cache when there is a shared one.
type SharedBackends = (Arc<dyn RateLimiter>, Option<Arc<dyn KvCache>>);

/// The rate limiter and the key-value cache: both on one Redis connection when `REDIS_URL` is
/// set (shared by every replica), else an in-process limiter and no shared cache. The
/// connection is lazy, so a Redis that is down at start-up is the limiter's fail-open/closed
/// case, not a failed start.
fn shared_backends(settings: &Settings) -> Result<SharedBackends, StartError> {
    let Some(url) = &settings.redis_url else {
        return Ok((Arc::new(MemoryRateLimiter::default()), None));
    };
    let connection = crate::cache::redis::connect_lazy(url.expose())
        .map_err(|err| StartError::Cache(err.to_string()))?;
    Ok((
        Arc::new(RedisRateLimiter::new(connection.clone())),
        Some(Arc::new(RedisKvCache::new(connection))),
    ))
}

/// The gateway's view of the configuration.
fn llm_settings(settings: &Settings) -> LlmSettings {
    LlmSettings {
        openai_api_key: settings.openai_api_key.clone(),
        openai_base_url: settings.openai_base_url.clone(),
        ollama_base_url: settings.ollama_base_url.clone(),
        anthropic_api_key: settings.anthropic_api_key.clone(),
        anthropic_base_url: settings.anthropic_base_url.clone(),
        default_model: settings.default_model.clone(),
        fallback_models: settings.fallback_models.clone(),
        timeout: settings.llm_timeout,
        idle_timeout: settings.llm_idle_timeout,
        ttft_timeout: settings.llm_ttft_timeout,
        max_retries: settings.llm_max_retries,
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// Asks the ragd configured by `settings` for `/health`: the container health check, so the
/// runtime image needs no curl. A wildcard listen address is probed on loopback.
pub async fn probe_health(settings: &Settings) -> Result<(), String> {
    let host = if settings.host.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        settings.host
    };
    let url = format!("http://{}/health", SocketAddr::new(host, settings.port));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("{url} answered {}", response.status())),
        Err(err) => Err(format!("{url}: {err}")),
    }
}
