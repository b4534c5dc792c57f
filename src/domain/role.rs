//! What a user may do: an ordinary user, or an operator with admin rights.

use std::{fmt, str::FromStr};

use super::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    #[default]
    User,
    Admin,
}

impl Role {
    /// The spelling used in the database and in API responses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            _ => Err(ParseError::expected("must be one of: user, admin")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_spelling() {
        for role in [Role::User, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
    }

    #[test]
    fn unknown_roles_are_rejected() {
        let err = "root".parse::<Role>().unwrap_err();
        assert_eq!(err.expected, "must be one of: user, admin");
        assert!("Admin".parse::<Role>().is_err());
    }
}
