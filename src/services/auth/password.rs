//! Password hashing with argon2id, as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
//!
//! Argon2 is deliberately slow (tens of milliseconds of CPU and 19 MiB per call), so every
//! public function runs it on tokio's blocking pool: on the async workers it would stall every
//! other request on that thread. And at most [`hashing_slots`] run at once: the blocking pool
//! grows to 512 threads, so a burst of logins would otherwise take 19 MiB each (300 at once
//! took 5.9 GB) and finish no sooner, the cores being busy anyway. The others wait their turn.

use std::sync::{Arc, LazyLock};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

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

/// How many argon2 calls may run at once: one per core, and at least two.
fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |cores| cores.get().max(2))
}

static HASHING: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(hashing_slots())));

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    run_limited(&HASHING, work).await
}

/// Runs `work` on the blocking pool once one of `slots` is free. The slot is held by the work
/// itself, so a caller that gives up (its request timed out) frees it only when the work is
/// done and its memory released.
async fn run_limited<T: Send + 'static>(
    slots: &Arc<Semaphore>,
    work: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| AuthError::Hashing(format!("hashing slots closed: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
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
    async fn no_more_than_the_slots_hash_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let slots = Arc::new(Semaphore::new(2));
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let calls = (0..8).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            run_limited(&slots, move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        });

        for result in futures::future::join_all(calls).await {
            result.unwrap();
        }

        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} ran at once");
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
