//! The storage layer's one error type, shared by both backends.

/// What went wrong in the store, in terms a service can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; `constraint` names it (e.g. `users_email_key`).
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// The database could not be reached or refused the connection.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Schema migration failed at start-up.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Stored data that the code cannot read back (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let constraint = db.constraint().map(str::to_string).unwrap_or_else(|| {
                    // SQLite names columns, not the index: "UNIQUE constraint failed: users.email".
                    db.message()
                        .rsplit(": ")
                        .next()
                        .unwrap_or("unique")
                        .to_string()
                });
                Self::Conflict { constraint }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            _ => Self::Database(err),
        }
    }
}
