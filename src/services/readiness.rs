//! What `/health/ready` reports: one check per dependency, each bounded in time so a hung
//! dependency makes the answer "not ready", never a hung probe.

use std::time::Duration;

use serde::Serialize;

use crate::app::AppState;
use crate::services::rate_limits::LimiterHealth;

/// How long one dependency may take to answer a readiness probe.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok` when every check is `ok`, `disabled` or `degraded`, else `unavailable`.
    #[schema(example = "ok")]
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    pub database: Check,
    pub cache: Check,
    pub llm: Check,
    pub embeddings: Check,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// `ok`, `disabled`, `degraded` (failing but tolerated, e.g. Redis down with
    /// `RATE_LIMIT_FAIL_OPEN=true`) or `error`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// What was checked, or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Check {
    fn ok(detail: impl Into<String>) -> Self {
        Self {
            status: "ok",
            detail: Some(detail.into()),
        }
    }

    fn disabled(detail: impl Into<String>) -> Self {
        Self {
            status: "disabled",
            detail: Some(detail.into()),
        }
    }

    /// Failing, but tolerated by configuration: still ready.
    fn degraded(detail: impl Into<String>) -> Self {
        Self {
            status: "degraded",
            detail: Some(detail.into()),
        }
    }

    fn error(detail: impl Into<String>) -> Self {
        Self {
            status: "error",
            detail: Some(detail.into()),
        }
    }

    fn is_usable(&self) -> bool {
        self.status != "error"
    }
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.status == "ok"
    }
}

pub async fn check(state: &AppState) -> Readiness {
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Check::ok(state.store.backend()),
        Ok(Err(err)) => Check::error(format!("{}: {err}", state.store.backend())),
        Err(_) => Check::error(format!(
            "{}: no answer within {CHECK_TIMEOUT:?}",
            state.store.backend()
        )),
    };
    let cache = match tokio::time::timeout(CHECK_TIMEOUT, state.rate_limits.health()).await {
        Ok(LimiterHealth::InProcess) => Check::disabled("in-process (REDIS_URL unset)"),
        Ok(LimiterHealth::Reachable) => Check::ok(state.rate_limits.backend()),
        // Failing open keeps serving (unlimited), so the replica stays in rotation.
        Ok(LimiterHealth::Unreachable {
            error,
            fail_open: true,
        }) => Check::degraded(format!("{error}; rate limits not enforced (fail open)")),
        Ok(LimiterHealth::Unreachable {
            error,
            fail_open: false,
        }) => Check::error(format!("{error}; limited requests refused (fail closed)")),
        Err(_) => Check::error(format!(
            "{}: no answer within {CHECK_TIMEOUT:?}",
            state.rate_limits.backend()
        )),
    };
    let llm = Check::ok(format!(
        "default model {}",
        state
            .settings
            .default_model
            .as_deref()
            .unwrap_or("local/extractive")
    ));
    let embeddings = Check::ok(state.settings.embedding_model.clone());
    let all_usable = [&database, &cache, &llm, &embeddings]
        .iter()
        .all(|c| c.is_usable());
    Readiness {
        status: if all_usable { "ok" } else { "unavailable" },
        checks: Checks {
            database,
            cache,
            llm,
            embeddings,
        },
    }
}
