//! The JWT signing key: `SECRET_KEY` when set, else a random key generated once and kept in the
//! data directory (mode 0600), so tokens survive restarts without any configuration.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::RngExt;

use crate::config::{MIN_SECRET_KEY_BYTES, Settings};
use crate::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("cannot read or create the signing key at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the signing key at {path} is shorter than {MIN_SECRET_KEY_BYTES} bytes: delete it or set SECRET_KEY"
    )]
    TooShort { path: String },
}

pub fn resolve(settings: &Settings) -> Result<Secret, SigningKeyError> {
    if let Some(key) = &settings.secret_key {
        return Ok(key.clone());
    }
    let path = settings.secret_key_path();
    load_or_create(&path)
}

fn load_or_create(path: &Path) -> Result<Secret, SigningKeyError> {
    let io = |source| SigningKeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(existing) => {
            let key = existing.trim().to_string();
            if key.len() < MIN_SECRET_KEY_BYTES {
                return Err(SigningKeyError::TooShort {
                    path: path.display().to_string(),
                });
            }
            return Ok(Secret::new(key));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io(err)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let bytes: [u8; 32] = rand::rng().random();
    let key = hex::encode(bytes);
    // create_new: two processes starting at once must not overwrite each other's key.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            file.write_all(key.as_bytes()).map_err(io)?;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
            tracing::info!(path = %path.display(), "generated a new signing key");
            Ok(Secret::new(key))
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(err) => Err(io(err)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret_key");
        let first = load_or_create(&path).unwrap();
        let second = load_or_create(&path).unwrap();
        assert_eq!(first, second);
        assert!(first.expose().len() >= MIN_SECRET_KEY_BYTES);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
