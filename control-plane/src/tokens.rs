//! Admin API tokens: generated with 256 bits of randomness, shown once, kept only as SHA-256
//! hashes (a fast hash is enough for secrets this long) and compared in constant time. Where
//! they are stored is [`crate::db::tokens`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every token we issue, so leaked tokens are easy to recognise and scan for.
const TOKEN_PREFIX: &str = "lsat_";

/// The SHA-256 of a presented token.
pub(crate) type TokenHash = [u8; 32];

pub(crate) fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time equality of two hashes.
pub(crate) fn hashes_match(a: &TokenHash, b: &TokenHash) -> bool {
    a.ct_eq(b).into()
}

/// A new secret token.
pub(crate) fn generate() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_prefixed_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert!(hashes_match(&hash(&a), &hash(&a)));
        assert!(!hashes_match(&hash(&a), &hash(&b)));
    }
}
