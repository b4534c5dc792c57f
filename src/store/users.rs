//! Accounts: who can log in, with which password hash and role.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;

/// A stored account. `email` is lower-cased; `role` is `user` or `admin`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// What creating an account needs; the id and time are assigned by the store.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub role: String,
}

#[cfg(test)]
impl NewUser {
    /// An ordinary account that store-level tests own data with (it never signs in).
    pub fn for_tests(email: &str) -> Self {
        Self {
            email: email.to_owned(),
            password_hash: "x".to_owned(),
            role: "user".to_owned(),
        }
    }
}

#[async_trait]
pub trait UserStore {
    /// Creates an account; `StoreError::Conflict` when the email is taken.
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError>;
    /// `email` must already be lower-cased.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// Every account, oldest first (operators' `ragd user list`).
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// Deletes the account and, by cascade, everything it owns. False when there was none.
    async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError>;
}
