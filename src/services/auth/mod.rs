//! Credentials: password hashing, access tokens (JWT) and API keys, and [`accounts`], which
//! resolves a bearer token to its user over the store, with a per-replica cache
//! ([`credential_cache`]) kept honest by the revocation log ([`revocations`]). No HTTP here; the
//! routes and the authenticated-user extractor build on it.

pub mod accounts;
pub mod api_key;
pub mod credential_cache;
pub mod jwt;
pub mod key_usage;
pub mod password;
pub mod revocations;

/// Why a credential was refused or could not be produced.
///
/// The token variants are all "401" to a client, but stay distinct so the auth-failure metric
/// ([`AuthError::reason`]) shows what is being tried against the deployment.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Not three base64url parts with a JSON header and payload.
    #[error("malformed token")]
    MalformedToken,
    /// The header names another algorithm than HS256 (including `none` and RS256 with the
    /// public key used as an HMAC secret: the classic confusion attacks).
    #[error("token algorithm not accepted")]
    DisallowedAlgorithm,
    #[error("token signature does not match")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim is present with the wrong type or shape (e.g. a `sub` that is not a UUID).
    #[error("token claim `{0}` is invalid")]
    InvalidClaim(&'static str),
    /// Signing failed: a server fault, not the client's.
    #[error("could not sign token: {0}")]
    Signing(String),
    /// Hashing or verifying a password failed for a reason other than a wrong password (a
    /// corrupt stored hash, a blocking task that died): a server fault.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl AuthError {
    /// A stable, low-cardinality label for the `auth_failures_total{reason}` metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MalformedToken => "malformed",
            Self::DisallowedAlgorithm => "algorithm",
            Self::BadSignature => "signature",
            Self::Expired => "expired",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim(_) => "invalid_claim",
            Self::Signing(_) => "signing",
            Self::Hashing(_) => "hashing",
        }
    }
}
