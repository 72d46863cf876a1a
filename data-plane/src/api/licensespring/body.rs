//! The license body LicenseSpring's `check_license` and `activate_license` answer (seed 002's
//! response schema), filled from our model, and the signed response: the exact body bytes
//! signed with the cluster's active Ed25519 key in the `LicenseSignature` header (standard
//! base64), the key's id in `LicenseSignatureKid`.
//!
//! Fields our model has no counterpart for (floating, borrowing, overages, maintenance,
//! installation files, transfers) carry LicenseSpring's "off" value: `false`, `0`, `""` or
//! `null`, so clients take the feature as not in use.
//!
//! LicenseSpring's numeric ids that the replicated model has no number for (the device, the
//! product, the user, each feature) are [`stable_number`]s: 31 bits of a SHA-256 of the UUIDs
//! or names they stand for, the same on every data plane and across restarts.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use license_shared::signing::{self, ClusterKey};
use license_shared::{AuthorizationMethod, Customer, License, LicenseStatus, Product};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The header carrying the signature of the body.
pub const SIGNATURE_HEADER: &str = "LicenseSignature";
/// The header naming the key that made it (a `kid` of the JWKS).
pub const SIGNATURE_KID_HEADER: &str = "LicenseSignatureKid";

/// What a license body is built from.
#[derive(Debug)]
pub struct LicenseFacts<'a> {
    pub license: &'a License,
    pub product: &'a Product,
    pub customer: Option<&'a Customer>,
    pub hardware_id: &'a str,
    pub environment: Option<&'a str>,
    pub now: DateTime<Utc>,
}

#[derive(Serialize)]
struct LicenseBody<'a> {
    id: i64,
    allow_grace_period: bool,
    allow_overages: bool,
    allow_unlimited_activations: bool,
    borrowed_until: Option<String>,
    can_borrow: bool,
    channel: &'static str,
    device_id: u32,
    enable_maintenance_period: bool,
    environment: &'a str,
    eula_link: &'static str,
    floating_timeout: u32,
    grace_period: u32,
    hash_md5: &'static str,
    installation_file: &'static str,
    is_air_gapped: bool,
    is_borrowed: bool,
    is_expired: bool,
    is_floating_cloud: bool,
    is_floating: bool,
    is_hardware_key_auth: bool,
    license_active: bool,
    license_enabled: bool,
    license_signature: String,
    license_signature_v2: &'static str,
    offline_signature: &'static str,
    license_type: &'static str,
    maintenance_period: Option<String>,
    max_activations: i64,
    max_borrow_time: u32,
    max_license_users: u32,
    max_overages: u32,
    max_transfers: u32,
    order_store_id: &'static str,
    prevent_vm: bool,
    release_date: &'static str,
    release_notes_link: &'static str,
    requires_version: &'static str,
    size: &'static str,
    start_date: Option<String>,
    times_activated: usize,
    transfer_count: u32,
    validity_period: Option<String>,
    version: &'static str,
    company: Company,
    product_features: Vec<Feature<'a>>,
    custom_fields: Vec<CustomField<'a>>,
    customer: CustomerBody<'a>,
    product_details: ProductDetails<'a>,
    metadata: &'a license_shared::CompactJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
}

#[derive(Serialize)]
struct Company {
    id: i64,
}

#[derive(Serialize)]
struct Feature<'a> {
    id: u32,
    code: &'a str,
    name: &'a str,
    expiry_date: Option<String>,
    metadata: Value,
    feature_type: &'static str,
    is_floating: bool,
    is_floating_cloud: bool,
    floating_users: u32,
    floating_timeout: u32,
    max_consumption: u32,
    allow_unlimited_consumptions: bool,
    total_consumptions: u32,
    allow_overages: bool,
    max_overages: u32,
    reset_consumption: bool,
    consumption_period: Option<&'static str>,
}

#[derive(Serialize)]
struct CustomField<'a> {
    name: &'a str,
    data_type: &'static str,
    value: String,
}

#[derive(Serialize)]
struct CustomerBody<'a> {
    email: &'a str,
    company_name: &'a str,
    reference: &'a str,
    phone: &'static str,
    first_name: &'a str,
    last_name: &'a str,
    city: &'static str,
    postcode: &'static str,
    state: &'static str,
    country: &'static str,
    address: &'static str,
    customer_account: Option<String>,
    metadata: &'a Value,
}

#[derive(Serialize)]
struct ProductDetails<'a> {
    product_id: u32,
    product_name: &'a str,
    short_code: &'a str,
    authorization_method: &'static str,
    metadata: &'a Value,
}

#[derive(Serialize)]
struct User<'a> {
    id: u32,
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    phone_number: &'static str,
    is_initial_password: bool,
    max_activations: i64,
    allow_unlimited_activations: bool,
    total_activations: usize,
}

/// The metadata of a customer the data plane does not know (yet).
static NO_METADATA: Value = Value::Null;

/// RFC 3339 with milliseconds, as LicenseSpring writes dates.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The license body, serialized.
pub fn license_body(facts: &LicenseFacts<'_>, key: &ClusterKey) -> Vec<u8> {
    let license = facts.license;
    let is_expired = license.is_expired(facts.now);
    let enabled = license.status == LicenseStatus::Active;
    let started = license.starts_at.is_none_or(|start| start <= facts.now);
    let unlimited = license.max_activations.is_none();
    let max_activations = license.max_activations.map_or(0, i64::from);
    let validity_period = license.expires_at.map(timestamp);
    let user_based = facts.product.authorization_method == AuthorizationMethod::User;
    let email = facts
        .customer
        .map_or("", |customer| customer.email.as_str());
    let key_text = license.key.to_string();
    // LicenseSpring's v1 signature message, signed with Ed25519 instead of RSA.
    let auth_value = if user_based { email } else { key_text.as_str() };
    let v1_message = format!(
        "{}#{}#{}",
        facts.hardware_id,
        auth_value,
        validity_period.as_deref().unwrap_or_default()
    )
    .to_lowercase();
    let customer = facts.customer;
    let feature_map = license.features.to_map();
    let license_metadata = license.metadata.to_value();
    let body = LicenseBody {
        id: license.number,
        allow_grace_period: false,
        allow_overages: false,
        allow_unlimited_activations: unlimited,
        borrowed_until: None,
        can_borrow: false,
        channel: "",
        device_id: device_number(license, facts.hardware_id),
        enable_maintenance_period: false,
        environment: facts.environment.unwrap_or_default(),
        eula_link: "",
        floating_timeout: 0,
        grace_period: 0,
        hash_md5: "",
        installation_file: "",
        is_air_gapped: false,
        is_borrowed: false,
        is_expired,
        is_floating_cloud: false,
        is_floating: false,
        is_hardware_key_auth: false,
        license_active: enabled && started && !is_expired,
        license_enabled: enabled,
        license_signature: signing::sign_base64(&key.key, v1_message.as_bytes()),
        license_signature_v2: "",
        offline_signature: "",
        license_type: license.license_type.as_str(),
        maintenance_period: None,
        max_activations,
        max_borrow_time: 0,
        max_license_users: 0,
        max_overages: 0,
        max_transfers: 0,
        order_store_id: "",
        prevent_vm: false,
        release_date: "",
        release_notes_link: "",
        requires_version: "",
        size: "",
        start_date: license.starts_at.map(timestamp),
        times_activated: license.active_devices.len(),
        transfer_count: 0,
        validity_period,
        version: "",
        company: Company { id: 0 },
        product_features: features(&feature_map, license.expires_at),
        custom_fields: custom_fields(&license_metadata),
        customer: CustomerBody {
            email,
            company_name: customer
                .and_then(|c| c.company_name.as_deref())
                .unwrap_or_default(),
            reference: customer
                .and_then(|c| c.reference.as_deref())
                .unwrap_or_default(),
            phone: "",
            first_name: customer
                .and_then(|c| c.first_name.as_deref())
                .unwrap_or_default(),
            last_name: customer
                .and_then(|c| c.last_name.as_deref())
                .unwrap_or_default(),
            city: "",
            postcode: "",
            state: "",
            country: "",
            address: "",
            customer_account: None,
            metadata: customer.map_or(&NO_METADATA, |c| &c.metadata),
        },
        product_details: ProductDetails {
            product_id: stable_number(&[facts.product.id.as_bytes()]),
            product_name: &facts.product.name,
            short_code: &facts.product.code,
            authorization_method: facts.product.authorization_method.as_str(),
            metadata: &facts.product.metadata,
        },
        metadata: &license.metadata,
        license_key: (!user_based).then_some(key_text.clone()),
        user: user_based.then(|| User {
            id: stable_number(&[license.customer_id.as_bytes()]),
            email,
            first_name: customer
                .and_then(|c| c.first_name.as_deref())
                .unwrap_or_default(),
            last_name: customer
                .and_then(|c| c.last_name.as_deref())
                .unwrap_or_default(),
            phone_number: "",
            is_initial_password: false,
            max_activations,
            allow_unlimited_activations: unlimited,
            total_activations: license.active_devices.len(),
        }),
    };
    serde_json::to_vec(&body).expect("a license body always serializes")
}

/// Our features object as LicenseSpring product features: every flag or limit that is not
/// `false`/`null` is a feature whose code is its name; its value is kept as `metadata.value`.
fn features(features: &Map<String, Value>, expires_at: Option<DateTime<Utc>>) -> Vec<Feature<'_>> {
    features
        .iter()
        .filter(|(_, value)| !matches!(value, Value::Bool(false) | Value::Null))
        .map(|(code, value)| Feature {
            id: feature_id(code),
            code,
            name: code,
            expiry_date: expires_at.map(timestamp),
            metadata: serde_json::json!({ "value": value }),
            feature_type: "activation",
            is_floating: false,
            is_floating_cloud: false,
            floating_users: 0,
            floating_timeout: 0,
            max_consumption: 0,
            allow_unlimited_consumptions: false,
            total_consumptions: 0,
            allow_overages: false,
            max_overages: 0,
            reset_consumption: false,
            consumption_period: None,
        })
        .collect()
}

/// A stable numeric id for a feature code.
fn feature_id(code: &str) -> u32 {
    stable_number(&[code.as_bytes()])
}

/// LicenseSpring's `device_id`: a device is a hardware id on one license.
fn device_number(license: &License, hardware_id: &str) -> u32 {
    stable_number(&[license.id.as_bytes(), hardware_id.as_bytes()])
}

/// A stable number for what the data plane knows only by UUIDs or names: the first 31 bits of
/// the SHA-256 of `parts` (separated by a NUL byte), so it fits any client's integer type.
/// Distinct things may collide (one pair in about 46 000); these ids are labels for clients,
/// never used to look anything up here.
fn stable_number(parts: &[&[u8]]) -> u32 {
    let mut hasher = Sha256::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hasher.update([0]);
        }
        hasher.update(part);
    }
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) >> 1
}

/// License metadata entries as LicenseSpring custom fields (values as text).
fn custom_fields(metadata: &Value) -> Vec<CustomField<'_>> {
    let Value::Object(entries) = metadata else {
        return Vec::new();
    };
    entries
        .iter()
        .map(|(name, value)| CustomField {
            name,
            data_type: if value.is_number() { "number" } else { "text" },
            value: match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            },
        })
        .collect()
}

/// A 200 answer with `body`, signed.
pub fn signed_response(body: Vec<u8>, key: &ClusterKey) -> Response {
    let signature = signing::sign_base64(&key.key, &body);
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&signature) {
        headers.insert(SIGNATURE_HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_str(&key.kid) {
        headers.insert(SIGNATURE_KID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use license_shared::signing::{ClusterKey, generate_key, verify_base64};
    use serde_json::Value;
    use uuid::Uuid;

    use super::*;
    use crate::store::tests::{customer, product, realistic_license};

    fn key() -> ClusterKey {
        ClusterKey::new(Uuid::new_v4(), generate_key(), true, 1)
    }

    fn body_of(facts: &LicenseFacts<'_>, key: &ClusterKey) -> Value {
        serde_json::from_slice(&license_body(facts, key)).expect("JSON")
    }

    #[test]
    fn license_signature_signs_the_documented_message() {
        let key = key();
        let product = product(1, "desk");
        let customer = customer(1);
        let mut license = realistic_license(1, product.id, customer.id);
        license.expires_at = Some(Utc.with_ymd_and_hms(2031, 1, 2, 3, 4, 5).unwrap());
        let facts = LicenseFacts {
            license: &license,
            product: &product,
            customer: Some(&customer),
            hardware_id: "Device-A",
            environment: None,
            now: Utc::now(),
        };
        let body = body_of(&facts, &key);
        assert_eq!(body["validity_period"], "2031-01-02T03:04:05.000Z");
        // `lowercase(hardware_id#license_key#validity_period)`, as LicenseSpring's v1
        // signature, with Ed25519.
        let message = format!("device-a#{}#2031-01-02t03:04:05.000z", license.key).to_lowercase();
        let signature = body["license_signature"].as_str().expect("a signature");
        let public = key.key.verifying_key();
        assert!(verify_base64(&public, message.as_bytes(), signature).is_ok());
        // Bound to the device and to the key.
        let other_device =
            format!("device-b#{}#2031-01-02t03:04:05.000z", license.key).to_lowercase();
        assert!(verify_base64(&public, other_device.as_bytes(), signature).is_err());

        // User-based products sign the username (the customer's email) instead of the key; a
        // license without an expiry signs an empty validity period.
        let mut by_user = product.clone();
        by_user.authorization_method = AuthorizationMethod::User;
        let perpetual = License {
            expires_at: None,
            ..license.clone()
        };
        let facts = LicenseFacts {
            product: &by_user,
            license: &perpetual,
            ..facts
        };
        let body = body_of(&facts, &key);
        let message = format!("device-a#{}#", customer.email).to_lowercase();
        let signature = body["license_signature"].as_str().expect("a signature");
        assert!(verify_base64(&public, message.as_bytes(), signature).is_ok());
    }

    #[test]
    fn numeric_ids_are_numbers_stable_for_what_they_stand_for() {
        let key = key();
        let mut product = product(1, "desk");
        product.authorization_method = AuthorizationMethod::User;
        let customer = customer(1);
        let license = realistic_license(1, product.id, customer.id);
        let facts = |hardware_id| LicenseFacts {
            license: &license,
            product: &product,
            customer: Some(&customer),
            hardware_id,
            environment: None,
            now: Utc::now(),
        };
        let a = body_of(&facts("device-a"), &key);
        let again = body_of(&facts("device-a"), &key);
        let b = body_of(&facts("device-b"), &key);
        for field in ["device_id", "id"] {
            assert!(a[field].is_u64(), "{field}: {}", a[field]);
        }
        assert!(a["product_details"]["product_id"].is_u64());
        assert!(a["user"]["id"].is_u64());
        assert_eq!(a["id"], license.number);
        assert_eq!(a["device_id"], again["device_id"]);
        assert_ne!(a["device_id"], b["device_id"], "one id per device");
        assert_eq!(a["product_details"], again["product_details"]);
        assert_eq!(
            a["user"]["id"], b["user"]["id"],
            "the user, whatever the device"
        );
        let features = a["product_features"].as_array().expect("features");
        assert!(!features.is_empty());
        for feature in features {
            assert!(feature["id"].is_u64(), "{feature}");
            assert!(
                feature["id"].as_u64().is_some_and(|id| id <= 0x7fff_ffff),
                "fits a signed 32-bit integer: {feature}"
            );
        }
    }

    #[test]
    fn stable_numbers_fit_31_bits_and_separate_their_parts() {
        assert_eq!(stable_number(&[b"pro"]), feature_id("pro"));
        assert!(stable_number(&[b"anything"]) <= 0x7fff_ffff);
        assert_ne!(stable_number(&[b"ab", b"c"]), stable_number(&[b"a", b"bc"]));
    }
}
