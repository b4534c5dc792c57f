//! Access tokens: HS256 JWTs signed with `SECRET_KEY`.
//!
//! Verification pins the algorithm before anything else is trusted: a token whose header names
//! `none`, an asymmetric algorithm or another HMAC is refused without looking at its claims.

use std::{collections::HashSet, time::Duration};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind,
    get_current_timestamp,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AuthError;
use crate::secret::Secret;

/// Clock skew tolerated between replicas when checking `exp`. jsonwebtoken's default is a
/// minute, which would keep a token alive a minute past its advertised lifetime.
const LEEWAY_SECS: u64 = 5;

/// The verified claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The user the token was issued to.
    pub sub: Uuid,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
    /// Token id: unique per token, so one can be told apart (and later revoked) in logs.
    pub jti: Uuid,
}

/// The claims as they arrive, every field optional: a missing claim becomes
/// [`AuthError::MissingClaim`] rather than a generic deserialization failure.
#[derive(Deserialize)]
struct UntrustedClaims {
    sub: Option<String>,
    iat: Option<u64>,
    exp: Option<u64>,
    jti: Option<String>,
}

/// A freshly signed token and its lifetime, as the token endpoint returns them.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: Secret,
    pub expires_in_secs: u64,
}

/// The signing and verification keys, derived once from the secret at start-up.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    /// The secret's length is the configuration's business (it refuses a short one at start-up).
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.required_spec_claims = HashSet::from(["exp".to_owned(), "sub".to_owned()]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    pub fn issue(&self, user_id: Uuid, ttl: Duration) -> Result<IssuedToken, AuthError> {
        let now = get_current_timestamp();
        let claims = Claims {
            sub: user_id,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
            jti: Uuid::new_v4(),
        };
        Ok(IssuedToken {
            token: Secret::new(self.sign(&claims)?),
            expires_in_secs: ttl.as_secs(),
        })
    }

    /// Checks the algorithm, the signature, then the expiry and the claims, in that order: no
    /// part of an unsigned or forged token is interpreted.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| header_error(e.kind()))?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::DisallowedAlgorithm);
        }
        let data = jsonwebtoken::decode::<UntrustedClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| token_error(e.kind()))?;
        into_claims(data.claims)
    }

    fn sign(&self, claims: &Claims) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }
}

/// jsonwebtoken knows no `none` algorithm, so a header naming it (or anything else it does not
/// know) fails as JSON *data* that does not fit its header type, while the JSON itself is well
/// formed. Broken base64 or broken JSON is a malformed token.
fn header_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::Json(e) if e.classify() == serde_json::error::Category::Data => {
            AuthError::DisallowedAlgorithm
        }
        _ => AuthError::MalformedToken,
    }
}

fn token_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidAlgorithm => AuthError::DisallowedAlgorithm,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        // Only `exp` and `sub` are required, and only `exp` is format-checked, by the library.
        ErrorKind::MissingRequiredClaim(claim) if claim == "sub" => AuthError::MissingClaim("sub"),
        ErrorKind::MissingRequiredClaim(_) => AuthError::MissingClaim("exp"),
        ErrorKind::InvalidClaimFormat(_) => AuthError::InvalidClaim("exp"),
        ErrorKind::ImmatureSignature => AuthError::InvalidClaim("nbf"),
        _ => AuthError::MalformedToken,
    }
}

fn into_claims(untrusted: UntrustedClaims) -> Result<Claims, AuthError> {
    let sub = untrusted.sub.ok_or(AuthError::MissingClaim("sub"))?;
    let jti = untrusted.jti.ok_or(AuthError::MissingClaim("jti"))?;
    let iat = untrusted.iat.ok_or(AuthError::MissingClaim("iat"))?;
    // ragd issues tokens dated now: one issued in the future was not made by ragd's clock.
    if iat > get_current_timestamp().saturating_add(LEEWAY_SECS) {
        return Err(AuthError::InvalidClaim("iat"));
    }
    Ok(Claims {
        sub: Uuid::parse_str(&sub).map_err(|_| AuthError::InvalidClaim("sub"))?,
        iat,
        exp: untrusted.exp.ok_or(AuthError::MissingClaim("exp"))?,
        jti: Uuid::parse_str(&jti).map_err(|_| AuthError::InvalidClaim("jti"))?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    const SECRET: &str = "a test signing secret of more than thirty-two bytes";

    fn keys() -> JwtKeys {
        JwtKeys::new(&Secret::new(SECRET))
    }

    fn sign_with(alg: Algorithm, secret: &str, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn valid_claims() -> serde_json::Value {
        let now = get_current_timestamp();
        json!({"sub": Uuid::new_v4(), "iat": now, "exp": now + 600, "jti": Uuid::new_v4()})
    }

    /// Keeps a genuine token's payload and signature under another header, the way the
    /// `alg` confusion attacks are mounted.
    fn with_header(token: &str, header_base64url: &str) -> String {
        let (_, rest) = token.split_once('.').unwrap();
        format!("{header_base64url}.{rest}")
    }

    #[test]
    fn an_issued_token_verifies_to_its_claims() {
        let keys = keys();
        let user = Uuid::new_v4();
        let issued = keys.issue(user, Duration::from_secs(1800)).unwrap();
        assert_eq!(issued.expires_in_secs, 1800);
        let claims = keys.verify(issued.token.expose()).unwrap();
        assert_eq!(claims.sub, user);
        assert_eq!(claims.exp - claims.iat, 1800);
        assert_eq!(claims.jti.get_version_num(), 4);
    }

    #[test]
    fn every_token_gets_its_own_id() {
        let keys = keys();
        let user = Uuid::new_v4();
        let first = keys.issue(user, Duration::from_secs(60)).unwrap();
        let second = keys.issue(user, Duration::from_secs(60)).unwrap();
        let jti = |t: &IssuedToken| keys.verify(t.token.expose()).unwrap().jti;
        assert_ne!(jti(&first), jti(&second));
    }

    #[test]
    fn an_unsigned_alg_none_token_is_rejected() {
        let genuine = sign_with(Algorithm::HS256, SECRET, &valid_claims());
        // {"alg":"none","typ":"JWT"}
        let unsigned = with_header(&genuine, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0");
        let (without_signature, _) = unsigned.rsplit_once('.').unwrap();
        for token in [unsigned.clone(), format!("{without_signature}.")] {
            let err = keys().verify(&token).unwrap_err();
            assert!(matches!(err, AuthError::DisallowedAlgorithm), "{err:?}");
            assert_eq!(err.reason(), "algorithm");
        }
    }

    #[test]
    fn an_rs256_header_over_an_hmac_signature_is_rejected() {
        let genuine = sign_with(Algorithm::HS256, SECRET, &valid_claims());
        // {"alg":"RS256","typ":"JWT"}
        let confused = with_header(&genuine, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9");
        let err = keys().verify(&confused).unwrap_err();
        assert!(matches!(err, AuthError::DisallowedAlgorithm), "{err:?}");
    }

    #[test]
    fn a_token_signed_with_the_right_key_but_hs512_is_rejected() {
        let token = sign_with(Algorithm::HS512, SECRET, &valid_claims());
        let err = keys().verify(&token).unwrap_err();
        assert!(matches!(err, AuthError::DisallowedAlgorithm), "{err:?}");
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let token = sign_with(Algorithm::HS256, "some other secret", &valid_claims());
        let err = keys().verify(&token).unwrap_err();
        assert!(matches!(err, AuthError::BadSignature), "{err:?}");
        assert_eq!(err.reason(), "signature");
    }

    #[test]
    fn a_tampered_payload_is_rejected() {
        let keys = keys();
        let genuine = keys.issue(Uuid::new_v4(), Duration::from_secs(60)).unwrap();
        let other = keys.issue(Uuid::new_v4(), Duration::from_secs(60)).unwrap();
        let parts: Vec<&str> = genuine.token.expose().split('.').collect();
        let other_payload = other.token.expose().split('.').nth(1).unwrap();
        let spliced = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
        let err = keys.verify(&spliced).unwrap_err();
        assert!(matches!(err, AuthError::BadSignature), "{err:?}");
    }

    #[test]
    fn an_expired_token_is_rejected_beyond_a_few_seconds_of_leeway() {
        let keys = keys();
        let now = get_current_timestamp();
        let expired = Claims {
            sub: Uuid::new_v4(),
            iat: now - 120,
            exp: now - LEEWAY_SECS - 10,
            jti: Uuid::new_v4(),
        };
        let err = keys.verify(&keys.sign(&expired).unwrap()).unwrap_err();
        assert!(matches!(err, AuthError::Expired), "{err:?}");
        assert_eq!(err.reason(), "expired");
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        for token in [
            "",
            "not-a-jwt",
            "a.b",
            "a.b.c",
            "!!!.###.$$$",
            "bm90IGpzb24.e30.c2ln",
        ] {
            let err = keys().verify(token).unwrap_err();
            assert!(
                matches!(err, AuthError::MalformedToken),
                "{token:?}: {err:?}"
            );
        }
    }

    #[test]
    fn a_token_without_sub_is_rejected() {
        let mut claims = valid_claims();
        claims.as_object_mut().unwrap().remove("sub");
        let err = keys()
            .verify(&sign_with(Algorithm::HS256, SECRET, &claims))
            .unwrap_err();
        assert!(matches!(err, AuthError::MissingClaim("sub")), "{err:?}");
        assert_eq!(err.reason(), "missing_claim");
    }

    #[test]
    fn tokens_without_exp_or_jti_are_rejected() {
        for claim in ["exp", "jti", "iat"] {
            let mut claims = valid_claims();
            claims.as_object_mut().unwrap().remove(claim);
            let err = keys()
                .verify(&sign_with(Algorithm::HS256, SECRET, &claims))
                .unwrap_err();
            assert!(
                matches!(err, AuthError::MissingClaim(c) if c == claim),
                "{err:?}"
            );
        }
    }

    #[test]
    fn tokens_issued_or_valid_only_in_the_future_are_rejected() {
        let later = get_current_timestamp() + 3600;
        for (claim, value) in [("iat", later), ("nbf", later)] {
            let mut claims = valid_claims();
            claims["exp"] = json!(later + 600);
            claims[claim] = json!(value);
            let err = keys()
                .verify(&sign_with(Algorithm::HS256, SECRET, &claims))
                .unwrap_err();
            assert!(
                matches!(err, AuthError::InvalidClaim(c) if c == claim),
                "{claim}: {err:?}"
            );
        }
        let mut claims = valid_claims();
        claims["nbf"] = json!(get_current_timestamp());
        assert!(
            keys()
                .verify(&sign_with(Algorithm::HS256, SECRET, &claims))
                .is_ok()
        );
    }

    #[test]
    fn a_sub_that_is_not_a_user_id_is_rejected() {
        let mut claims = valid_claims();
        claims["sub"] = json!("admin");
        let err = keys()
            .verify(&sign_with(Algorithm::HS256, SECRET, &claims))
            .unwrap_err();
        assert!(matches!(err, AuthError::InvalidClaim("sub")), "{err:?}");
    }
}
