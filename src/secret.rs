//! A string that must never reach a log line, a Debug dump or an error message.

use std::fmt;

/// Wraps a secret (API key, signing key, password) so that `Debug` and `Display` print stars.
///
/// The inner value is reachable only through [`Secret::expose`], which makes every use of
/// the clear text greppable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The clear text. Call it only where the secret leaves ragd on purpose (a header, a hash).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("sk-very-secret");
        assert!(!format!("{secret:?}").contains("very"));
        assert!(!format!("{secret}").contains("very"));
        assert_eq!(secret.expose(), "sk-very-secret");
    }
}
