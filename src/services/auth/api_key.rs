//! API keys for programs: `rk_` followed by 32 random bytes in lower-case hex.
//!
//! Only the SHA-256 of a key is stored. A plain, unsalted hash is enough here (unlike for
//! passwords) because the key carries 256 bits of randomness: there is nothing to guess, and a
//! fast hash lets every request look its key up by hash in one indexed query.

use sha2::{Digest, Sha256};

use crate::secret::Secret;

const SCHEME: &str = "rk_";
const RANDOM_BYTES: usize = 32;
/// `rk_` and 8 hex digits: enough for a user to recognise a key in a list, far too little to
/// help anyone guess the other 248 bits.
const DISPLAY_PREFIX_LEN: usize = SCHEME.len() + 8;

/// A new key: shown to its owner once, then only its prefix and hash are kept.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub key: Secret,
    pub prefix: String,
    pub hash: String,
}

pub fn generate() -> GeneratedKey {
    let random: [u8; RANDOM_BYTES] = rand::random();
    let key = format!("{SCHEME}{}", hex::encode(random));
    GeneratedKey {
        prefix: key[..DISPLAY_PREFIX_LEN].to_owned(),
        hash: hash(&key),
        key: Secret::new(key),
    }
}

/// The lower-case hex SHA-256 of a key, as stored and looked up.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether a bearer token has the exact shape of an API key (as opposed to a JWT). A token that
/// fails this is refused without a database lookup.
pub fn is_api_key(token: &str) -> bool {
    token.strip_prefix(SCHEME).is_some_and(|random| {
        random.len() == 2 * RANDOM_BYTES
            && random
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_has_the_documented_shape() {
        let generated = generate();
        let key = generated.key.expose();
        assert_eq!(key.len(), 67);
        assert!(key.starts_with("rk_"));
        assert!(is_api_key(key));
        assert_eq!(generated.prefix, &key[..11]);
        assert!(!format!("{generated:?}").contains(&key[11..]));
    }

    #[test]
    fn the_stored_hash_is_the_hex_sha256_of_the_key() {
        let generated = generate();
        assert_eq!(generated.hash, hash(generated.key.expose()));
        assert_eq!(generated.hash.len(), 64);
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn keys_are_unique() {
        assert_ne!(generate().key, generate().key);
    }

    #[test]
    fn jwts_and_near_misses_are_not_api_keys() {
        let key = generate().key.expose().to_owned();
        assert!(!is_api_key("eyJhbGciOiJIUzI1NiJ9.e30.c2ln"));
        assert!(!is_api_key(&key[..66]));
        assert!(!is_api_key(&format!("{key}0")));
        assert!(!is_api_key(&key.to_uppercase()));
        assert!(!is_api_key(&format!("sk_{}", &key[3..])));
        assert!(!is_api_key(&format!("{}g", &key[..66])));
        assert!(!is_api_key(&format!("rk_{}é", &key[3..65])));
    }
}
