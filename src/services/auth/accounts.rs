//! Accounts: registering, logging in, and turning a bearer token back into the user it
//! belongs to. The one place that decides who a request is.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::credential_cache::{self, CredentialCache, Resolved};
use super::jwt::{IssuedToken, JwtKeys};
use super::key_usage::{self, KeyUsage, KeyUsageFlusher};
use super::revocations::RevocationFollower;
use super::{AuthError, api_key, password};
use crate::domain::{Email, Password, Role};
use crate::secret::Secret;
use crate::store::{ApiKey, NewApiKey, NewUser, Store, StoreError, User};

/// A user as the rest of ragd sees them once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
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
    /// An `rk_` key that is not (or no longer) stored: never issued, or revoked.
    #[error("invalid or expired credentials")]
    UnknownApiKey,
    /// The caller already holds [`MAX_API_KEYS_PER_USER`] keys.
    #[error("you already have {MAX_API_KEYS_PER_USER} API keys; revoke one to create another")]
    TooManyApiKeys,
    /// The caller has no API key with this id (another user's key included).
    #[error("API key not found")]
    ApiKeyNotFound,
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
            Self::UnknownApiKey => Some("unknown_api_key"),
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

/// Keys one user may hold at once: far more than programs need, few enough that a leaked
/// session cannot mint keys without bound.
pub const MAX_API_KEYS_PER_USER: u32 = 100;

/// Registration, login and token verification over the user store.
pub struct Accounts {
    store: Arc<dyn Store>,
    jwt: JwtKeys,
    token_ttl: Duration,
    allow_registration: bool,
    /// API keys used since the last flush; see [`Accounts::start_key_usage_flusher`].
    key_usage: Arc<KeyUsage>,
    /// Resolved credentials; trusted only while [`Accounts::start_revocation_follower`] runs.
    credentials: Arc<CredentialCache>,
}

/// A key just created: the only time its secret is available.
#[derive(Debug, Clone)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: Secret,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        signing_key: &Secret,
        token_ttl: Duration,
        allow_registration: bool,
        credential_ttl: Duration,
    ) -> Self {
        Self {
            store,
            jwt: JwtKeys::new(signing_key),
            token_ttl,
            allow_registration,
            key_usage: Arc::default(),
            credentials: Arc::new(CredentialCache::new(
                credential_ttl,
                credential_cache::CAPACITY,
            )),
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

    /// The user a bearer token stands for: an API key (`rk_...`) or an access token (JWT).
    ///
    /// Answered from the credential cache when it holds the token (see
    /// [`credential_cache`] for why that is safe), else from the database; a revoked key or a
    /// deleted user is refused at once on this replica and within half a second on the others.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Principal>, AccountError> {
        let fingerprint = credential_cache::fingerprint(token);
        let resolved = match self
            .credentials
            .get(&fingerprint, jsonwebtoken::get_current_timestamp())
        {
            Some(hit) => hit,
            None => {
                let generation = self.credentials.generation();
                let resolved = if api_key::is_api_key(token) {
                    self.resolve_api_key(&hex::encode(fingerprint)).await?
                } else {
                    self.resolve_jwt(token).await?
                };
                self.credentials
                    .insert(fingerprint, resolved.clone(), generation);
                resolved
            }
        };
        if let Some(key_id) = resolved.key_id {
            self.key_usage
                .record(resolved.principal.id, key_id, crate::store::now());
        }
        Ok(resolved.principal)
    }

    async fn resolve_api_key(&self, key_hash: &str) -> Result<Resolved, AccountError> {
        let owner = self
            .store
            .api_key_owner(key_hash)
            .await?
            .ok_or(AccountError::UnknownApiKey)?;
        Ok(Resolved {
            principal: Arc::new(principal(&owner.user)),
            key_id: Some(owner.key_id),
            expires_at: None,
        })
    }

    /// The user an access token was issued to, if the token is valid and the user still exists.
    async fn resolve_jwt(&self, token: &str) -> Result<Resolved, AccountError> {
        let claims = self
            .jwt
            .verify(token)
            .map_err(AccountError::Unauthenticated)?;
        let user = self
            .store
            .user_by_id(claims.sub)
            .await?
            .ok_or(AccountError::UnknownUser)?;
        Ok(Resolved {
            principal: Arc::new(principal(&user)),
            key_id: None,
            expires_at: Some(claims.exp),
        })
    }

    /// Issues a new API key for `user_id`; the returned secret is never stored.
    pub async fn create_api_key(
        &self,
        user_id: Uuid,
        name: &str,
    ) -> Result<CreatedApiKey, AccountError> {
        let generated = api_key::generate();
        let key = self
            .store
            .create_api_key(
                user_id,
                NewApiKey {
                    name: name.to_owned(),
                    prefix: generated.prefix,
                    key_hash: generated.hash,
                },
                MAX_API_KEYS_PER_USER,
            )
            .await
            .map_err(AccountError::Store)?
            .ok_or(AccountError::TooManyApiKeys)?;
        Ok(CreatedApiKey {
            key,
            secret: generated.key,
        })
    }

    /// The caller's keys, oldest first.
    pub async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, AccountError> {
        Ok(self.store.list_api_keys(user_id).await?)
    }

    /// Revokes one of the caller's keys: refused from the next request on here, and within
    /// [`super::revocations::SYNC_EVERY`] on every other replica.
    pub async fn revoke_api_key(&self, user_id: Uuid, id: Uuid) -> Result<(), AccountError> {
        if self.store.delete_api_key(user_id, id).await? {
            self.credentials.forget_user(user_id);
            Ok(())
        } else {
            Err(AccountError::ApiKeyNotFound)
        }
    }

    /// Writes the pending `last_used_at` updates now (the flusher does it every few seconds).
    pub async fn flush_key_usage(&self) -> Result<usize, AccountError> {
        Ok(self.key_usage.flush(self.store.as_ref()).await?)
    }

    /// Starts writing `last_used_at` in the background; its `shutdown` flushes the rest.
    pub fn start_key_usage_flusher(&self) -> KeyUsageFlusher {
        KeyUsageFlusher::start(
            self.key_usage.clone(),
            self.store.clone(),
            key_usage::FLUSH_EVERY,
        )
    }

    /// Starts following the revocation log; until it has read the log once (and whenever it
    /// cannot), cached credentials are not used.
    pub fn start_revocation_follower(&self) -> Option<RevocationFollower> {
        self.credentials
            .enabled()
            .then(|| RevocationFollower::start(self.credentials.clone(), self.store.clone()))
    }
}

/// The authenticated view of a stored account. A role the code does not know (a row edited by
/// hand) is treated as the least privileged one.
pub fn principal(user: &User) -> Principal {
    Principal {
        id: user.id,
        email: user.email.clone(),
        role: user.role.parse().unwrap_or(Role::User),
        created_at: user.created_at,
    }
}
