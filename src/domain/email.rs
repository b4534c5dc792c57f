//! An email address as ragd stores and compares it: trimmed and lower-cased.

use std::fmt;

use super::ParseError;

/// RFC 5321 bounds the whole path to 254 characters and the local part to 64.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

const INVALID: ParseError =
    ParseError::expected("must be a valid email address such as name@example.com");
const TOO_LONG: ParseError = ParseError::expected("must be at most 254 characters");

/// A syntactically plausible email address, lower-cased so that uniqueness and login are
/// case-insensitive without a special collation in either database.
///
/// Validation is deliberately modest (one `@`, a non-empty local part without spaces, a dotted
/// domain of letters, digits and hyphens): the only real proof of an address is mail reaching
/// it, and strict RFC 5322 parsers reject addresses people actually use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let trimmed = input.trim();
        if trimmed.len() > MAX_LEN {
            return Err(TOO_LONG);
        }
        // Lower-casing can lengthen a few non-ASCII characters, so the bound is checked again.
        let normalized = trimmed.to_lowercase();
        if normalized.len() > MAX_LEN {
            return Err(TOO_LONG);
        }
        let (local, domain) = normalized.split_once('@').ok_or(INVALID)?;
        if is_valid_local_part(local) && is_valid_domain(domain) {
            Ok(Self(normalized))
        } else {
            Err(INVALID)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_LOCAL_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"@<>()[]\\,;:\"".contains(c))
}

fn is_valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_trimmed_and_lower_cased() {
        let email = Email::parse("  Ada.Lovelace@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "ada.lovelace@example.com");
    }

    #[test]
    fn common_real_addresses_are_accepted() {
        for ok in [
            "a@b.co",
            "first+tag@mail.example.org",
            "x_y-z@sub-domain.example.io",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok} should parse");
        }
    }

    #[test]
    fn malformed_addresses_are_rejected_with_what_was_expected() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "name@",
            "name@localhost",
            "two@@example.com",
            "a@b@example.com",
            "with space@example.com",
            "name@exa mple.com",
            "name@-example.com",
            "name@example..com",
            ".name@example.com",
            "na..me@example.com",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err(INVALID),
                "{bad:?} should be rejected"
            );
        }
        assert!(INVALID.to_string().contains("valid email address"));
    }

    #[test]
    fn overlong_addresses_are_rejected() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(TOO_LONG));
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(Email::parse(&long_local), Err(INVALID));
    }
}
