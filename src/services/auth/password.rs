//! Password hashing with argon2id, as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
//!
//! Argon2 is deliberately slow (tens of milliseconds of CPU and 19 MiB per call), so every
//! public function runs it on tokio's blocking pool: on the async workers it would stall every
//! other request on that thread.

use std::sync::LazyLock;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use super::AuthError;
use crate::domain::Password;

/// OWASP's argon2id recommendation: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The hash that unknown emails are verified against, so a login for an address that is not
/// registered costs the same argon2 work as one that is, and timing does not tell them apart.
/// Computed with the same parameters as real hashes on first use (that one call pays twice).
static DUMMY_PHC: LazyLock<Result<String, String>> = LazyLock::new(|| {
    hash_blocking(b"ragd dummy password, never assigned to anyone").map_err(|e| e.to_string())
});

/// Hashes a new password with a fresh random salt; store the returned PHC string.
pub async fn hash(password: &Password) -> Result<String, AuthError> {
    let password = password.clone();
    run_blocking(move || hash_blocking(password.expose().as_bytes())).await
}

/// Whether `password` matches the stored PHC string. `Ok(false)` is a wrong password; an
/// error means the stored hash could not be read (a server fault, not the user's).
pub async fn verify(password: &Password, phc: &str) -> Result<bool, AuthError> {
    let password = password.clone();
    let phc = phc.to_owned();
    run_blocking(move || verify_blocking(password.expose().as_bytes(), &phc)).await
}

/// Does the work of [`verify`] against a dummy hash, for a login whose email is unknown. The
/// caller answers "bad credentials" either way; this only spends the same time doing so.
pub async fn verify_against_dummy(password: &Password) -> Result<(), AuthError> {
    let password = password.clone();
    run_blocking(move || {
        let dummy = DUMMY_PHC
            .as_ref()
            .map_err(|e| AuthError::Hashing(e.clone()))?;
        verify_blocking(password.expose().as_bytes(), dummy).map(|_matched| ())
    })
    .await
}

fn hasher() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|e| AuthError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &[u8]) -> Result<String, AuthError> {
    hasher()?
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Verification reads the algorithm and parameters from the PHC string itself, so hashes made
/// with older parameters keep verifying after the constants above change.
fn verify_blocking(password: &[u8], phc: &str) -> Result<bool, AuthError> {
    match hasher()?.verify_password(password, phc) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(AuthError::Hashing(e.to_string())),
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AuthError::Hashing(format!("hashing task failed: {e}")))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Password::parse(text).unwrap()
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let phc = hash(&password("correct horse battery")).await.unwrap();
        assert!(
            verify(&password("correct horse battery"), &phc)
                .await
                .unwrap()
        );
        assert!(
            !verify(&password("correct horse battery!"), &phc)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_a_fresh_salt() {
        let first = hash(&password("same password")).await.unwrap();
        let second = hash(&password("same password")).await.unwrap();
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "each hash gets its own salt");
        assert!(!first.contains("same password"));
    }

    #[tokio::test]
    async fn a_corrupt_stored_hash_is_an_error_not_a_wrong_password() {
        let result = verify(&password("whatever123"), "$argon2id$v=19$garbage").await;
        assert!(matches!(result, Err(AuthError::Hashing(_))), "{result:?}");
    }

    #[tokio::test]
    async fn verifying_against_the_dummy_does_the_same_argon2_work() {
        verify_against_dummy(&password("anything at all"))
            .await
            .unwrap();
        let dummy = DUMMY_PHC.as_ref().unwrap();
        let real = hash(&password("anything at all")).await.unwrap();
        let params = |phc: &str| phc.split('$').nth(3).map(str::to_owned);
        assert_eq!(
            params(dummy),
            params(&real),
            "same algorithm parameters, same cost"
        );
        assert!(dummy.starts_with("$argon2id$"));
    }
}
