//! A password as it arrives from a user: bounded, and never printable.

use crate::secret::Secret;

use super::ParseError;

/// At least 8 characters (the contract's rule); at most 1024 bytes, because every login and
/// registration runs argon2 over the whole input and an unbounded one is a cheap way to burn
/// the server's CPU.
const MIN_CHARS: usize = 8;
const MAX_BYTES: usize = 1024;

/// A clear-text password on its way to being hashed or verified. It lives in a [`Secret`], so
/// `Debug` and logs print stars.
#[derive(Debug, Clone)]
pub struct Password(Secret);

impl Password {
    pub fn parse(input: impl Into<String>) -> Result<Self, ParseError> {
        let input = input.into();
        if input.chars().count() < MIN_CHARS {
            return Err(ParseError::expected("must be at least 8 characters"));
        }
        if input.len() > MAX_BYTES {
            return Err(ParseError::expected("must be at most 1024 bytes"));
        }
        Ok(Self(Secret::new(input)))
    }

    /// The clear text, for the password hasher only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_password_within_bounds_is_accepted_and_never_printed() {
        let password = Password::parse("correct horse").unwrap();
        assert_eq!(password.expose(), "correct horse");
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn short_passwords_are_rejected() {
        let err = Password::parse("seven77").unwrap_err();
        assert_eq!(err.expected, "must be at least 8 characters");
    }

    #[test]
    fn eight_multibyte_characters_are_enough() {
        assert!(Password::parse("éééééééé").is_ok());
    }

    #[test]
    fn passwords_over_the_byte_bound_are_rejected() {
        assert!(Password::parse("a".repeat(MAX_BYTES)).is_ok());
        let err = Password::parse("a".repeat(MAX_BYTES + 1)).unwrap_err();
        assert_eq!(err.expected, "must be at most 1024 bytes");
    }
}
