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
                let result = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(result.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use impl_portable_stores;
