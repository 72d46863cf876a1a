//! Ed25519 signatures: the cluster's signing keys, their ids, and their publication as a JWKS
//! (RFC 8037). The control plane signs license documents with them and data planes sign
//! LicenseSpring responses (`LicenseSignature`); anyone holding the published public keys can
//! check either offline with [`Jwks::verify`].
//!
//! A [`ClusterKey`] carries its private half: it travels from the control plane's database to
//! data planes only over the mutually authenticated cluster channel, and its `Debug` output and
//! the public [`Jwk`] never include it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use ed25519_dalek;

/// Why a key file or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("not an Ed25519 private key in PKCS#8 PEM form: {0}")]
    BadPrivateKey(String),
    #[error("not an Ed25519 public key: {0}")]
    BadPublicKey(String),
    #[error("the signature is not standard base64 of 64 bytes")]
    MalformedSignature,
    #[error("no published key has the id {0:?}")]
    UnknownKeyId(String),
    #[error("the signature does not match the signed bytes")]
    Mismatch,
}

/// A fresh random signing key.
pub fn generate_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random::<[u8; 32]>())
}

/// Reads an Ed25519 private key from PKCS#8 PEM (`openssl genpkey -algorithm ed25519`).
pub fn key_from_pem(pem: &str) -> Result<SigningKey, SigningError> {
    SigningKey::from_pkcs8_pem(pem).map_err(|error| SigningError::BadPrivateKey(error.to_string()))
}

/// Writes an Ed25519 private key as PKCS#8 PEM.
pub fn key_to_pem(key: &SigningKey) -> Result<String, SigningError> {
    key.to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|error| SigningError::BadPrivateKey(error.to_string()))
}

/// Reads an Ed25519 public key from SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
pub fn public_key_from_pem(pem: &str) -> Result<VerifyingKey, SigningError> {
    VerifyingKey::from_public_key_pem(pem)
        .map_err(|error| SigningError::BadPublicKey(error.to_string()))
}

/// Writes an Ed25519 public key as SPKI PEM.
pub fn public_key_to_pem(key: &VerifyingKey) -> Result<String, SigningError> {
    key.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .map_err(|error| SigningError::BadPublicKey(error.to_string()))
}

/// The key id: the RFC 7638 JWK thumbprint of the public key, base64url without padding.
pub fn key_id(key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(key.as_bytes());
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Signs `message`; the signature as standard base64 (the `LicenseSignature` header's form).
pub fn sign_base64(key: &SigningKey, message: &[u8]) -> String {
    STANDARD.encode(key.sign(message).to_bytes())
}

/// Checks a standard-base64 signature of `message`.
pub fn verify_base64(
    key: &VerifyingKey,
    message: &[u8],
    signature: &str,
) -> Result<(), SigningError> {
    let bytes = STANDARD
        .decode(signature.trim())
        .map_err(|_| SigningError::MalformedSignature)?;
    let bytes: [u8; 64] = bytes
        .try_into()
        .map_err(|_| SigningError::MalformedSignature)?;
    key.verify_strict(message, &Signature::from_bytes(&bytes))
        .map_err(|_| SigningError::Mismatch)
}

/// One of the cluster's signing keys, as stored by the control plane and replicated to data
/// planes. Exactly one is `active` (used to sign); the others stay published so that what they
/// signed still verifies after a rotation.
#[derive(Clone)]
pub struct ClusterKey {
    pub id: Uuid,
    pub kid: String,
    pub key: SigningKey,
    pub active: bool,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
}

impl ClusterKey {
    /// A key record for `key`, its id derived from the public key.
    pub fn new(id: Uuid, key: SigningKey, active: bool, revision: i64) -> Self {
        ClusterKey {
            id,
            kid: key_id(&key.verifying_key()),
            key,
            active,
            revision,
            created_at: Utc::now(),
        }
    }

    /// The public half, as published.
    pub fn jwk(&self) -> Jwk {
        Jwk::new(&self.key.verifying_key())
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterKey")
            .field("id", &self.id)
            .field("kid", &self.kid)
            .field("key", &"[redacted]")
            .field("active", &self.active)
            .field("revision", &self.revision)
            .finish()
    }
}

impl PartialEq for ClusterKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.kid == other.kid
            && self.key.to_bytes() == other.key.to_bytes()
            && self.active == other.active
            && self.revision == other.revision
            && self.created_at == other.created_at
    }
}

/// The wire form: the private key as base64 of its 32-byte seed.
#[derive(Serialize, Deserialize)]
struct ClusterKeyWire {
    id: Uuid,
    private_key: String,
    active: bool,
    revision: i64,
    created_at: DateTime<Utc>,
}

impl Serialize for ClusterKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ClusterKeyWire {
            id: self.id,
            private_key: STANDARD.encode(self.key.to_bytes()),
            active: self.active,
            revision: self.revision,
            created_at: self.created_at,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ClusterKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ClusterKeyWire::deserialize(deserializer)?;
        let seed: [u8; 32] = STANDARD
            .decode(&wire.private_key)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("private_key is not base64 of 32 bytes"))?;
        let key = SigningKey::from_bytes(&seed);
        Ok(ClusterKey {
            id: wire.id,
            kid: key_id(&key.verifying_key()),
            key,
            active: wire.active,
            revision: wire.revision,
            created_at: wire.created_at,
        })
    }
}

/// A published public key (RFC 8037 `OKP` / `Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

impl Jwk {
    pub fn new(key: &VerifyingKey) -> Self {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
            kid: key_id(key),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    /// The public key this JWK describes.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SigningError> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(SigningError::BadPublicKey(format!(
                "kty {:?} / crv {:?} is not OKP / Ed25519",
                self.kty, self.crv
            )));
        }
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(&self.x)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| SigningError::BadPublicKey("x is not base64url of 32 bytes".into()))?;
        VerifyingKey::from_bytes(&bytes)
            .map_err(|error| SigningError::BadPublicKey(error.to_string()))
    }
}

/// A JSON Web Key Set, as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Checks a standard-base64 signature of `message` against the key `kid`, or, without a
    /// kid, against any published key.
    pub fn verify(
        &self,
        kid: Option<&str>,
        message: &[u8],
        signature: &str,
    ) -> Result<(), SigningError> {
        let candidates: Vec<&Jwk> = match kid {
            Some(kid) => {
                let found: Vec<&Jwk> = self.keys.iter().filter(|key| key.kid == kid).collect();
                if found.is_empty() {
                    return Err(SigningError::UnknownKeyId(kid.to_owned()));
                }
                found
            }
            None => self.keys.iter().collect(),
        };
        let mut outcome = Err(SigningError::Mismatch);
        for jwk in candidates {
            outcome = verify_base64(&jwk.verifying_key()?, message, signature);
            if outcome.is_ok() {
                break;
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_exact_bytes_and_key() {
        let key = generate_key();
        let other = generate_key();
        let jwks = Jwks {
            keys: vec![Jwk::new(&key.verifying_key())],
        };
        let signature = sign_base64(&key, b"{\"a\":1}");
        let kid = key_id(&key.verifying_key());
        assert_eq!(jwks.verify(Some(&kid), b"{\"a\":1}", &signature), Ok(()));
        assert_eq!(jwks.verify(None, b"{\"a\":1}", &signature), Ok(()));
        assert_eq!(
            jwks.verify(Some(&kid), b"{\"a\":2}", &signature),
            Err(SigningError::Mismatch)
        );
        assert_eq!(
            jwks.verify(None, b"{\"a\":1}", &sign_base64(&other, b"{\"a\":1}")),
            Err(SigningError::Mismatch)
        );
        assert_eq!(
            jwks.verify(Some("nope"), b"x", &signature),
            Err(SigningError::UnknownKeyId("nope".into()))
        );
        assert_eq!(
            jwks.verify(None, b"x", "not base64!"),
            Err(SigningError::MalformedSignature)
        );
    }

    #[test]
    fn keys_round_trip_through_pem_and_the_wire_without_leaking_in_debug() {
        let key = generate_key();
        let pem = key_to_pem(&key).expect("encodes");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            key_from_pem(&pem).expect("decodes").to_bytes(),
            key.to_bytes()
        );
        let public = public_key_to_pem(&key.verifying_key()).expect("encodes");
        assert_eq!(public_key_from_pem(&public), Ok(key.verifying_key()));
        assert!(matches!(
            key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(SigningError::BadPrivateKey(_))
        ));

        let record = ClusterKey::new(Uuid::new_v4(), key, true, 7);
        let wire = serde_json::to_string(&record).expect("serializes");
        let back: ClusterKey = serde_json::from_str(&wire).expect("deserializes");
        assert_eq!(back, record);
        let debug = format!("{record:?}");
        assert!(debug.contains("[redacted]"));
        assert!(!debug.contains(&STANDARD.encode(record.key.to_bytes())));
    }

    #[test]
    fn the_key_id_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example public key.
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(x)
            .expect("base64url")
            .try_into()
            .expect("32 bytes");
        let key = VerifyingKey::from_bytes(&bytes).expect("a valid point");
        assert_eq!(key_id(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
