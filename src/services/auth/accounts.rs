//! Accounts: registering, logging in, and turning a bearer token back into the user it
//! belongs to. The one place that decides who a request is.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::jwt::{IssuedToken, JwtKeys};
use super::{AuthError, password};
use crate::domain::{Email, Password, Role};
use crate::secret::Secret;
use crate::store::{NewUser, Store, StoreError, User};

/// A user as the rest of ragd sees them once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
}

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("registration is disabled on this server")]
    RegistrationClosed,
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Wrong email or wrong password: deliberately the same error for both.
    #[error("incorrect email or password")]
    InvalidCredentials,
    /// The bearer token was refused; the reason goes to metrics, not to the client.
    #[error("invalid or expired credentials")]
    Unauthenticated(AuthError),
    /// A valid token whose user has since been deleted.
    #[error("invalid or expired credentials")]
    UnknownUser,
    #[error(transparent)]
    Store(StoreError),
    /// Hashing or signing failed: a server fault.
    #[error(transparent)]
    Crypto(AuthError),
}

impl AccountError {
    /// The `reason` label of `auth_failures_total`, for failures that are the client's.
    pub fn failure_reason(&self) -> Option<&'static str> {
        match self {
            Self::InvalidCredentials => Some("bad_credentials"),
            Self::Unauthenticated(err) => Some(err.reason()),
            Self::UnknownUser => Some("unknown_user"),
            _ => None,
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { .. } => Self::EmailTaken,
            other => Self::Store(other),
        }
    }
}

/// Registration, login and token verification over the user store.
pub struct Accounts {
    store: Arc<dyn Store>,
    jwt: JwtKeys,
    token_ttl: Duration,
    allow_registration: bool,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        signing_key: &Secret,
        token_ttl: Duration,
        allow_registration: bool,
    ) -> Self {
        Self {
            store,
            jwt: JwtKeys::new(signing_key),
            token_ttl,
            allow_registration,
        }
    }

    /// Creates a `user` account through the public API (closed by `ALLOW_REGISTRATION=false`).
    pub async fn register(&self, email: Email, password: Password) -> Result<User, AccountError> {
        if !self.allow_registration {
            return Err(AccountError::RegistrationClosed);
        }
        self.create(email, password, Role::User).await
    }

    /// Creates an account with any role: the operators' `ragd user create`.
    pub async fn create(
        &self,
        email: Email,
        password: Password,
        role: Role,
    ) -> Result<User, AccountError> {
        let password_hash = password::hash(&password)
            .await
            .map_err(AccountError::Crypto)?;
        let user = self
            .store
            .create_user(NewUser {
                email: email.as_str().to_owned(),
                password_hash,
                role: role.as_str().to_owned(),
            })
            .await?;
        Ok(user)
    }

    /// Checks an email and password and issues an access token. An unknown email costs the same
    /// argon2 work as a known one, so response times do not reveal who has an account.
    pub async fn login(&self, email: &str, password: &str) -> Result<IssuedToken, AccountError> {
        // Inputs that could never have been registered still pay for a hash.
        let password = Password::parse(password).ok();
        let user = match Email::parse(email) {
            Ok(email) => self.store.user_by_email(email.as_str()).await?,
            Err(_) => None,
        };
        let verified = match (&user, &password) {
            (Some(user), Some(password)) => password::verify(password, &user.password_hash)
                .await
                .map_err(AccountError::Crypto)?,
            (_, Some(password)) => {
                password::verify_against_dummy(password)
                    .await
                    .map_err(AccountError::Crypto)?;
                false
            }
            (_, None) => false,
        };
        match user {
            Some(user) if verified => self
                .jwt
                .issue(user.id, self.token_ttl)
                .map_err(AccountError::Crypto),
            _ => Err(AccountError::InvalidCredentials),
        }
    }

    /// The stored account of an authenticated user (for `/auth/me`).
    pub async fn account(&self, id: Uuid) -> Result<User, AccountError> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(AccountError::UnknownUser)
    }

    /// The user an access token was issued to, if the token is valid and the user still exists.
    pub async fn authenticate_jwt(&self, token: &str) -> Result<Principal, AccountError> {
        let claims = self
            .jwt
            .verify(token)
            .map_err(AccountError::Unauthenticated)?;
        let user = self
            .store
            .user_by_id(claims.sub)
            .await?
            .ok_or(AccountError::UnknownUser)?;
        Ok(principal(&user))
    }
}

/// The authenticated view of a stored account. A role the code does not know (a row edited by
/// hand) is treated as the least privileged one.
pub fn principal(user: &User) -> Principal {
    Principal {
        id: user.id,
        email: user.email.clone(),
        role: user.role.parse().unwrap_or(Role::User),
    }
}
