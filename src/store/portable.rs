//! Store implementations whose SQL is the same on SQLite and PostgreSQL.
//!
//! sqlx binds `$1`-style placeholders on both backends, so portable queries are written once
//! here and instantiated for each backend's store type by [`impl_portable_stores!`]. SQL that
//! differs (vector search, keyword ranking, queue claiming) lives in the backend modules.

/// Implements the portable store traits for a type with a `pool` field of either backend.
macro_rules! impl_portable_stores {
    ($store:ty) => {
        #[::async_trait::async_trait]
        impl $crate::store::UserStore for $store {
            async fn create_user(
                &self,
                user: $crate::store::NewUser,
            ) -> Result<$crate::store::User, $crate::store::StoreError> {
                let created = $crate::store::User {
                    id: ::uuid::Uuid::now_v7(),
                    email: user.email,
                    password_hash: user.password_hash,
                    role: user.role,
                    created_at: $crate::store::now(),
                };
                sqlx::query(
                    "INSERT INTO users (id, email, password_hash, role, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(created.id)
                .bind(&created.email)
                .bind(&created.password_hash)
                .bind(&created.role)
                .bind(created.created_at)
                .execute(&self.pool)
                .await?;
                Ok(created)
            }

            async fn user_by_id(
                &self,
                id: ::uuid::Uuid,
            ) -> Result<Option<$crate::store::User>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, email, password_hash, role, created_at FROM users WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn user_by_email(
                &self,
                email: &str,
            ) -> Result<Option<$crate::store::User>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, email, password_hash, role, created_at FROM users WHERE email = $1",
                )
                .bind(email)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn list_users(
                &self,
            ) -> Result<Vec<$crate::store::User>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, email, password_hash, role, created_at FROM users ORDER BY id",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_user(
                &self,
                id: ::uuid::Uuid,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                if deleted {
                    $crate::store::portable::log_revocation!(tx, id);
                }
                tx.commit().await?;
                Ok(deleted)
            }
        }

        #[::async_trait::async_trait]
        impl $crate::store::ApiKeyStore for $store {
            async fn create_api_key(
                &self,
                user_id: ::uuid::Uuid,
                key: $crate::store::NewApiKey,
                limit: u32,
            ) -> Result<Option<$crate::store::ApiKey>, $crate::store::StoreError> {
                let created = $crate::store::ApiKey {
                    id: ::uuid::Uuid::now_v7(),
                    user_id,
                    name: key.name,
                    prefix: key.prefix,
                    created_at: $crate::store::now(),
                    last_used_at: None,
                };
                // The count and the insert must not interleave with another creation for the
                // same user (on PostgreSQL, two statements each counting before the other's
                // insert is committed would both insert): writing the owner's row first takes
                // its lock (SQLite's write lock) until the transaction ends.
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE users SET role = role WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) \
                     SELECT $1, $2, $3, $4, $5, $6 \
                     WHERE (SELECT COUNT(*) FROM api_keys WHERE user_id = $2) < $7",
                )
                .bind(created.id)
                .bind(user_id)
                .bind(&created.name)
                .bind(&created.prefix)
                .bind(&key.key_hash)
                .bind(created.created_at)
                .bind(i64::from(limit))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok((inserted > 0).then_some(created))
            }

            async fn list_api_keys(
                &self,
                user_id: ::uuid::Uuid,
            ) -> Result<Vec<$crate::store::ApiKey>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, user_id, name, prefix, created_at, last_used_at FROM api_keys \
                     WHERE user_id = $1 ORDER BY created_at, id",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn delete_api_key(
                &self,
                user_id: ::uuid::Uuid,
                id: ::uuid::Uuid,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                let deleted = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                if deleted {
                    $crate::store::portable::log_revocation!(tx, user_id);
                }
                tx.commit().await?;
                Ok(deleted)
            }

            async fn api_key_owner(
                &self,
                key_hash: &str,
            ) -> Result<Option<$crate::store::KeyOwner>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT k.id AS key_id, u.id, u.email, u.password_hash, u.role, u.created_at \
                     FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
                )
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn record_api_key_use(
                &self,
                uses: &[$crate::store::KeyUse],
            ) -> Result<(), $crate::store::StoreError> {
                if uses.is_empty() {
                    return Ok(());
                }
                let mut tx = self.pool.begin().await?;
                for used in uses {
                    sqlx::query(
                        "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND user_id = $3",
                    )
                    .bind(used.at)
                    .bind(used.key_id)
                    .bind(used.user_id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }

        #[::async_trait::async_trait]
        impl $crate::store::RevocationStore for $store {
            async fn revocations_since(
                &self,
                since: i64,
            ) -> Result<Vec<$crate::store::Revocation>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT seq, user_id, revoked_at FROM credential_revocations \
                     WHERE revoked_at >= $1 ORDER BY seq",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

/// Inside a transaction `tx` that just revoked credentials of `user_id`: logs the revocation
/// for the other replicas' credential caches and prunes rows nobody reads any more.
macro_rules! log_revocation {
    ($tx:ident, $user_id:expr) => {
        let now = $crate::store::revocations::now_micros();
        sqlx::query("INSERT INTO credential_revocations (user_id, revoked_at) VALUES ($1, $2)")
            .bind($user_id)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM credential_revocations WHERE revoked_at < $1")
            .bind(now - $crate::store::revocations::KEEP_FOR_MICROS)
            .execute(&mut *$tx)
            .await?;
    };
}

pub(crate) use {impl_portable_stores, log_revocation};
