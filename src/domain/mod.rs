//! Domain newtypes: values that were parsed once at the request boundary and are valid from
//! then on. No I/O here; a `parse` error says what was expected, in words fit for a 422
//! field message.

mod email;
mod password;
mod role;

pub use email::Email;
pub use password::Password;
pub use role::Role;

/// A value did not parse. The message says what was expected ("must be ..."); the caller
/// knows which field it came from and attaches the field name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{expected}")]
pub struct ParseError {
    pub expected: &'static str,
}

impl ParseError {
    const fn expected(expected: &'static str) -> Self {
        Self { expected }
    }
}
