//! Usage events: one row per LLM call (who, which model, how many tokens, how long, how it
//! ended), written in batches off the request path.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// One LLM call's accounting.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UsageEvent {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The routable model name that answered (or was asked, when none did).
    pub model: String,
    pub provider: String,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub latency_ms: i32,
    /// Time to the first token, for streamed answers.
    pub ttft_ms: Option<i32>,
    /// `success`, `error` or `cancelled`.
    pub outcome: String,
    pub created_at: DateTime<Utc>,
}

/// Rows in one `INSERT`: 10 parameters each stays far below SQLite's limit of 32,766.
pub const ROWS_PER_INSERT: usize = 500;

#[async_trait]
pub trait UsageStore {
    /// Writes a batch of events in one transaction.
    async fn record_usage(&self, events: &[UsageEvent]) -> Result<(), StoreError>;

    /// The caller's most recent events, newest first.
    async fn list_usage(&self, user_id: Uuid, limit: u32) -> Result<Vec<UsageEvent>, StoreError>;
}

/// Implements [`UsageStore`] for a type with a `pool` field and a `BEGIN_WRITE` constant;
/// the SQL is the same on both backends.
macro_rules! impl_portable_usage_store {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::store::UsageStore for $store {
            async fn record_usage(
                &self,
                events: &[$crate::store::UsageEvent],
            ) -> Result<(), $crate::store::StoreError> {
                if events.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin_with(Self::BEGIN_WRITE).await?;
                // Many rows per statement: under load a batch holds hundreds of events, and a
                // statement per row costs more in the driver than the rows themselves.
                for rows in events.chunks($crate::store::usage::ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO usage_events (id, user_id, model, provider, prompt_tokens, \
                         completion_tokens, latency_ms, ttft_ms, outcome, created_at) ",
                    );
                    insert.push_values(rows, |mut row, event| {
                        row.push_bind(event.id)
                            .push_bind(event.user_id)
                            .push_bind(&event.model)
                            .push_bind(&event.provider)
                            .push_bind(event.prompt_tokens)
                            .push_bind(event.completion_tokens)
                            .push_bind(event.latency_ms)
                            .push_bind(event.ttft_ms)
                            .push_bind(&event.outcome)
                            .push_bind(event.created_at);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_usage(
                &self,
                user_id: ::uuid::Uuid,
                limit: u32,
            ) -> Result<Vec<$crate::store::UsageEvent>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, user_id, model, provider, prompt_tokens, completion_tokens, \
                     latency_ms, ttft_ms, outcome, created_at FROM usage_events \
                     WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(user_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use impl_portable_usage_store;
