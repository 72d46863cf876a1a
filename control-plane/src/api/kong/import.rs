//! A license document sent to Kong's `/licenses` becomes license fields: its signature is
//! checked against the cluster's keys and the trusted issuers' (`--trusted-issuer-key`), then
//! its payload is read, ours (as [`license_shared::document::license_payload`] writes it) or
//! Kong's (`customer`, `product_subscription`, `license_key`, `license_expiration_date`, …).
//! The product and the customer it names are created when new, in the license's own
//! transaction (see [`NamedOwners`]). A document signed by a trusted
//! issuer is kept verbatim and served back as it came; one signed by the cluster is re-signed
//! from the stored facts (byte-identical when nothing changed).

use chrono::{DateTime, NaiveDate, Utc};
use license_shared::document::{self, DocumentError};
use license_shared::signing::ed25519_dalek::VerifyingKey;
use license_shared::{ApiError, AuthorizationMethod, LicenseKey, LicenseStatus, LicenseType};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::fields;
use crate::db::customers::CustomerFields;
use crate::db::licenses::{LicenseFields, NamedOwners};
use crate::db::products::NewProduct;
use crate::db::signing_keys;

pub(super) const INVALID_LICENSE_DOCUMENT: &str = "invalid_license_document";
pub(super) const INVALID_LICENSE_SIGNATURE: &str = "invalid_license_signature";

/// What a document asks for.
#[derive(Debug)]
pub(super) struct Imported {
    pub fields: LicenseFields,
    /// The product and customer the document names, found or created with the license.
    pub owners: NamedOwners,
    pub key: Option<LicenseKey>,
    /// The document itself, when a trusted issuer (not the cluster) signed it.
    pub imported_document: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(INVALID_LICENSE_DOCUMENT, message)
}

/// Checks and reads a document.
pub(super) async fn import(state: &AppState, text: &str) -> AppResult<Imported> {
    let ours: Vec<VerifyingKey> = signing_keys::all(&state.db)
        .await?
        .iter()
        .map(|key| key.key.verifying_key())
        .collect();
    let mut keys = ours.clone();
    keys.extend(state.trusted_issuers.iter().copied());
    let verified = document::verify(text, &keys).map_err(|error| match error {
        DocumentError::Untrusted | DocumentError::MalformedSignature => ApiError::bad_request(
            INVALID_LICENSE_SIGNATURE,
            format!("invalid license: {error}"),
        ),
        other => invalid(format!("invalid license: {other}")),
    })?;
    let signed_by_us = ours
        .iter()
        .any(|key| license_shared::signing::key_id(key) == verified.kid);
    let payload = verified.payload;
    let (fields, owners) = read_fields(&payload)?;
    let key = text_field(&payload, "license_key")?.and_then(|raw| LicenseKey::parse(&raw).ok());
    Ok(Imported {
        fields,
        owners,
        key,
        imported_document: (!signed_by_us).then(|| text.to_owned()),
    })
}

/// Names this module maps; any other payload field is kept in the license's metadata.
const MAPPED: &[&str] = &[
    "customer",
    "customer_email",
    "edition",
    "expires_at",
    "features",
    "issued_at",
    "license_creation_date",
    "license_expiration_date",
    "license_id",
    "license_key",
    "license_type",
    "max_activations",
    "product",
    "product_subscription",
    "revision",
    "starts_at",
    "status",
];

/// Kong payload counts that are license limits, kept as numeric features.
const KONG_LIMITS: &[&str] = &["admin_seats", "dataplanes"];

/// The license's fields, and the product and customer it names (found or created only when
/// the license is written, in its transaction). Reads no database: a document refused here
/// leaves nothing behind.
fn read_fields(payload: &Map<String, Value>) -> AppResult<(LicenseFields, NamedOwners)> {
    let product_name = text_field(payload, "product_subscription")?;
    let product_code = match text_field(payload, "product")? {
        Some(code) => code,
        None => slug(product_name.as_deref().unwrap_or("imported")),
    };
    let product = NewProduct {
        code: fields::required_text("product", product_code.clone(), fields::SHORT_TEXT)?,
        name: product_name.clone().unwrap_or_else(|| product_code.clone()),
        authorization_method: AuthorizationMethod::LicenseKey,
        key_prefix: None,
        metadata: Value::Object(Map::new()),
    };
    let customer_name = text_field(payload, "customer")?;
    let email = match text_field(payload, "customer_email")? {
        Some(email) => fields::email(email)?,
        // Kong's payload names the customer but no address: a reserved, never-routable one.
        None => format!(
            "{}@customers.invalid",
            slug(customer_name.as_deref().unwrap_or("unknown"))
        ),
    };
    let customer = CustomerFields {
        email,
        first_name: None,
        last_name: None,
        company_name: customer_name,
        reference: None,
        metadata: Value::Object(Map::new()),
    };

    let expires_at = match timestamp_field(payload, "expires_at")? {
        Some(at) => Some(at),
        None => match text_field(payload, "license_expiration_date")? {
            Some(raw) => Some(end_of_day(&raw)?),
            None => None,
        },
    };
    let starts_at = timestamp_field(payload, "starts_at")?;
    let status = match text_field(payload, "status")? {
        Some(raw) => raw
            .parse::<LicenseStatus>()
            .map_err(|error| invalid(format!("status: {error}")))?,
        None => LicenseStatus::Active,
    };
    let license_type = match text_field(payload, "license_type")? {
        Some(raw) => raw
            .parse::<LicenseType>()
            .map_err(|error| invalid(format!("license_type: {error}")))?,
        None if expires_at.is_some() => LicenseType::TimeLimited,
        None => LicenseType::Perpetual,
    };
    let max_activations = match text_field(payload, "max_activations")? {
        None => None,
        Some(raw) if raw == "unlimited" => None,
        Some(raw) => Some(fields::max_activations(raw.parse().map_err(|_| {
            invalid("max_activations must be a number or \"unlimited\"")
        })?)?),
    };
    let mut features = match payload.get("features") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(features)) => features.clone(),
        Some(_) => return Err(invalid("features must be an object").into()),
    };
    let mut metadata = Map::new();
    for (name, value) in payload {
        if MAPPED.contains(&name.as_str()) {
            continue;
        }
        match value.as_str().and_then(|raw| raw.parse::<i64>().ok()) {
            Some(limit) if KONG_LIMITS.contains(&name.as_str()) => {
                features.insert(name.clone(), Value::from(limit));
            }
            _ => {
                metadata.insert(name.clone(), value.clone());
            }
        }
    }
    if starts_at
        .zip(expires_at)
        .is_some_and(|(start, end)| start >= end)
    {
        return Err(invalid("starts_at must be before the expiration").into());
    }
    let owners = NamedOwners {
        product: Some(product),
        customer: Some(customer),
    };
    let fields = LicenseFields {
        // Placeholders: the license's transaction finds or creates `owners` and sets these.
        product_id: Uuid::nil(),
        customer_id: Uuid::nil(),
        edition: text_field(payload, "edition")?,
        status,
        license_type,
        max_activations,
        features,
        starts_at,
        expires_at,
        notes: None,
        private_notes: None,
        metadata: Value::Object(metadata),
    };
    Ok((fields, owners))
}

/// A string field: absent or null is `None`; anything but a string is refused.
fn text_field(payload: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() > fields::SHORT_TEXT => Err(invalid(
            format!("{name} is longer than {} characters", fields::SHORT_TEXT),
        )),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

fn timestamp_field(
    payload: &Map<String, Value>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    text_field(payload, name)?
        .map(|raw| {
            DateTime::parse_from_rfc3339(&raw)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| invalid(format!("{name} is not an RFC 3339 timestamp")))
        })
        .transpose()
}

/// Kong's `license_expiration_date` (`YYYY-MM-DD`): valid through that whole day, UTC.
fn end_of_day(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(23, 59, 59))
        .map(|at| at.and_utc())
        .ok_or_else(|| invalid("license_expiration_date must be YYYY-MM-DD"))
}

/// `Konnect Enterprise` → `konnect-enterprise`.
fn slug(text: &str) -> String {
    let mut slug = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "imported".to_owned()
    } else {
        slug.chars().take(64).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_readable_codes() {
        assert_eq!(slug("Konnect Enterprise"), "konnect-enterprise");
        assert_eq!(slug("Example Company, Inc"), "example-company-inc");
        assert_eq!(slug("  "), "imported");
    }

    #[test]
    fn kong_expiration_dates_cover_the_whole_day() {
        assert_eq!(
            end_of_day("2017-07-20").ok().map(|at| at.to_rfc3339()),
            Some("2017-07-20T23:59:59+00:00".to_owned())
        );
        assert!(end_of_day("20/07/2017").is_err());
    }
}
