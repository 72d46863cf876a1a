//! Signed license documents (DESIGN §3) in Kong's envelope:
//! `{"license":{"kid":"…","payload":{…},"signature":"<128 hex>","version":"1"}}`.
//!
//! The signature is Ed25519 over the payload's canonical JSON: compact, object keys sorted
//! (byte order), as Kong's own documents are written. Documents are deterministic: the same
//! license facts and key give byte-identical documents wherever they are made. [`verify`] is
//! what a client app needs to check a document offline against the published keys; it refuses
//! any change to the payload, the signature or the envelope's version.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::model::{Customer, License, Product};
use crate::signing::{self, ClusterKey, Jwks, SigningError, ed25519_dalek::VerifyingKey};

/// The only envelope version.
pub const VERSION: &str = "1";

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("not a license document: {0}")]
    Malformed(String),
    #[error("unsupported document version {0:?} (expected \"1\")")]
    UnsupportedVersion(String),
    #[error("the signature is not 128 hexadecimal characters")]
    MalformedSignature,
    #[error("the document is not signed by a trusted key")]
    Untrusted,
}

/// A document whose signature checked out.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedDocument {
    pub payload: Map<String, Value>,
    /// The id of the key that signed it.
    pub kid: String,
}

/// `value` as canonical JSON: compact, object keys sorted by their bytes, at every depth.
pub fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                // Insertion order is kept if serde_json preserves order, and sorted otherwise.
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(key, value)| (key.clone(), sorted(value)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Signs `payload` with `key`; returns the document's text.
pub fn sign(payload: Map<String, Value>, key: &ClusterKey) -> String {
    let payload = Value::Object(payload);
    let message = canonical_json(&payload);
    let signature = key_signature_hex(key, message.as_bytes());
    canonical_json(&serde_json::json!({
        "license": {
            "kid": key.kid,
            "payload": payload,
            "signature": signature,
            "version": VERSION,
        }
    }))
}

fn key_signature_hex(key: &ClusterKey, message: &[u8]) -> String {
    use signing::ed25519_dalek::Signer;
    hex::encode(key.key.sign(message).to_bytes())
}

/// Checks `text` against `keys` (trying the key its `kid` names first, then the others) and
/// returns its payload.
pub fn verify(text: &str, keys: &[VerifyingKey]) -> Result<VerifiedDocument, DocumentError> {
    let envelope: Value = serde_json::from_str(text)
        .map_err(|error| DocumentError::Malformed(format!("not JSON: {error}")))?;
    let license = envelope
        .get("license")
        .and_then(Value::as_object)
        .ok_or_else(|| DocumentError::Malformed("no \"license\" object".into()))?;
    let version = license
        .get("version")
        .and_then(Value::as_str)
        .ok_or_else(|| DocumentError::Malformed("no \"license.version\" string".into()))?;
    if version != VERSION {
        return Err(DocumentError::UnsupportedVersion(version.to_owned()));
    }
    let payload = license
        .get("payload")
        .and_then(Value::as_object)
        .ok_or_else(|| DocumentError::Malformed("no \"license.payload\" object".into()))?;
    let signature = license
        .get("signature")
        .and_then(Value::as_str)
        .ok_or_else(|| DocumentError::Malformed("no \"license.signature\" string".into()))?;
    let signature: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(DocumentError::MalformedSignature)?;
    let signature = signing::ed25519_dalek::Signature::from_bytes(&signature);
    let message = canonical_json(&Value::Object(payload.clone()));
    let named = license.get("kid").and_then(Value::as_str);
    let mut ordered: Vec<&VerifyingKey> = keys.iter().collect();
    ordered.sort_by_key(|key| named != Some(signing::key_id(key).as_str()));
    for key in ordered {
        if key.verify_strict(message.as_bytes(), &signature).is_ok() {
            return Ok(VerifiedDocument {
                payload: payload.clone(),
                kid: signing::key_id(key),
            });
        }
    }
    Err(DocumentError::Untrusted)
}

/// [`verify`] against a published JWKS.
pub fn verify_with_jwks(text: &str, jwks: &Jwks) -> Result<VerifiedDocument, DocumentError> {
    let keys = jwks
        .keys
        .iter()
        .map(|jwk| jwk.verifying_key())
        .collect::<Result<Vec<_>, SigningError>>()
        .map_err(|error| DocumentError::Malformed(format!("bad published key: {error}")))?;
    verify(text, &keys)
}

fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The facts of one license version, as a document payload: Kong's fields (`customer`,
/// `license_key`, `product_subscription`, `license_creation_date`, `license_expiration_date`)
/// and ours (ids, product code, customer email, edition, status, type, limits, features,
/// exact dates, revision). Never the private notes.
pub fn license_payload(
    license: &License,
    product: &Product,
    customer: &Customer,
) -> Map<String, Value> {
    let customer_name = customer
        .company_name
        .clone()
        .or_else(|| {
            let name = [
                customer.first_name.as_deref(),
                customer.last_name.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            (!name.is_empty()).then_some(name)
        })
        .unwrap_or_else(|| customer.email.clone());
    let mut payload = Map::new();
    let mut put = |name: &str, value: Value| {
        payload.insert(name.to_owned(), value);
    };
    put("customer", customer_name.into());
    put("customer_email", customer.email.clone().into());
    put(
        "edition",
        license.edition.clone().map_or(Value::Null, Value::from),
    );
    put(
        "expires_at",
        license
            .expires_at
            .map(timestamp)
            .map_or(Value::Null, Value::from),
    );
    put("features", license.features.to_value());
    put("issued_at", timestamp(license.updated_at).into());
    put("license_creation_date", date(license.created_at).into());
    if let Some(expires_at) = license.expires_at {
        put("license_expiration_date", date(expires_at).into());
    }
    put("license_id", license.id.to_string().into());
    put("license_key", license.key.to_string().into());
    put("license_type", license.license_type.as_str().into());
    put(
        "max_activations",
        license
            .max_activations
            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
            .into(),
    );
    put("product", product.code.clone().into());
    put("product_subscription", product.name.clone().into());
    put("revision", license.revision.to_string().into());
    put(
        "starts_at",
        license
            .starts_at
            .map(timestamp)
            .map_or(Value::Null, Value::from),
    );
    put("status", license.status.as_str().into());
    payload
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::signing::generate_key;

    fn key() -> ClusterKey {
        ClusterKey::new(Uuid::new_v4(), generate_key(), true, 1)
    }

    fn payload() -> Map<String, Value> {
        json!({"license_key": "K", "customer": "Example Company, Inc", "dataplanes": "1",
               "features": {"b": 1, "a": true}})
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    #[test]
    fn a_signed_document_verifies_and_gives_back_its_payload() {
        let key = key();
        let document = sign(payload(), &key);
        assert!(document.starts_with("{\"license\":{\"kid\":"));
        let verified = verify(&document, &[key.key.verifying_key()]).expect("verifies");
        assert_eq!(verified.payload, payload());
        assert_eq!(verified.kid, key.kid);
        // Deterministic: the same facts and key give the same bytes.
        assert_eq!(sign(payload(), &key), document);
    }

    #[test]
    fn tampered_documents_are_refused() {
        let key = key();
        let keys = [key.key.verifying_key()];
        let document = sign(payload(), &key);
        let tampered = document.replace("Example Company", "Exemple Company");
        assert_eq!(verify(&tampered, &keys), Err(DocumentError::Untrusted));
        let more = document.replace("\"dataplanes\":\"1\"", "\"dataplanes\":\"9\"");
        assert_eq!(verify(&more, &keys), Err(DocumentError::Untrusted));
        let mut envelope: Value = serde_json::from_str(&document).expect("json");
        envelope["license"]["version"] = json!("2");
        assert!(matches!(
            verify(&envelope.to_string(), &keys),
            Err(DocumentError::UnsupportedVersion(_))
        ));
        envelope["license"]["version"] = json!("1");
        envelope["license"]["signature"] = json!("abc");
        assert_eq!(
            verify(&envelope.to_string(), &keys),
            Err(DocumentError::MalformedSignature)
        );
        envelope["license"]["signature"] = json!("00".repeat(64));
        assert_eq!(
            verify(&envelope.to_string(), &keys),
            Err(DocumentError::Untrusted)
        );
        assert!(matches!(
            verify("{nope", &keys),
            Err(DocumentError::Malformed(_))
        ));
        assert!(matches!(
            verify("{}", &keys),
            Err(DocumentError::Malformed(_))
        ));
        // Another key does not verify it.
        assert_eq!(
            verify(&document, &[generate_key().verifying_key()]),
            Err(DocumentError::Untrusted)
        );
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter_but_values_do() {
        let key = key();
        let document = sign(payload(), &key);
        let reformatted =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(&document).expect("json"))
                .expect("pretty");
        assert!(verify(&reformatted, &[key.key.verifying_key()]).is_ok());
        assert_eq!(
            canonical_json(&json!({"b": {"d": 1, "c": [2, {"f": 0, "e": 1}]}, "a": "x"})),
            r#"{"a":"x","b":{"c":[2,{"e":1,"f":0}],"d":1}}"#
        );
    }
}
