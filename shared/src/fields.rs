//! Parsing of individual request fields into domain values, each failure a 400 with the code
//! that names what was wrong (`invalid_uuid`, `invalid_date`, `invalid_max_activations`, …).

use std::str::FromStr;

use crate::model::UnknownVariant;
use crate::{ApiError, LicenseKey, codes};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

/// Most devices one license may allow; larger numbers are surely mistakes.
pub const MAX_ACTIVATIONS_LIMIT: i64 = 1_000_000;
/// Longest name-like value (names, editions, device names).
pub const SHORT_TEXT: usize = 256;
/// Longest free-text value (notes).
pub const LONG_TEXT: usize = 10_000;

/// Deserializes a field that may be absent (`None`), null (`Some(None)`) or set.
/// Use with `#[serde(default, deserialize_with = "nullable")]`.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Shows user input in a message without echoing an enormous value back.
fn quoted(raw: &str) -> String {
    const SHOWN: usize = 64;
    match raw.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}…", &raw[..cut]),
        None => format!("{raw:?}"),
    }
}

pub fn uuid(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::bad_request(
            codes::INVALID_UUID,
            format!("{field}: {} is not a UUID", quoted(raw)),
        )
    })
}

pub fn license_key(raw: &str) -> Result<LicenseKey, ApiError> {
    LicenseKey::parse(raw).map_err(|error| {
        ApiError::bad_request(
            codes::INVALID_LICENSE_KEY,
            format!("{} is not a license key: {error}", quoted(raw)),
        )
    })
}

/// An ISO 8601 / RFC 3339 timestamp (`2027-01-15T00:00:00Z`), or a date (`2027-01-15`), which
/// means midnight UTC.
pub fn timestamp(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Some(midnight) = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
    {
        return Ok(midnight.and_utc());
    }
    Err(ApiError::bad_request(
        codes::INVALID_DATE,
        format!(
            "{field}: {} is not an ISO 8601 timestamp such as 2027-01-15T00:00:00Z",
            quoted(raw)
        ),
    ))
}

pub fn optional_timestamp(
    field: &str,
    raw: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| timestamp(field, raw)).transpose()
}

pub fn max_activations(raw: i64) -> Result<i32, ApiError> {
    if (1..=MAX_ACTIVATIONS_LIMIT).contains(&raw) {
        i32::try_from(raw).map_err(|_| invalid_max_activations(raw))
    } else {
        Err(invalid_max_activations(raw))
    }
}

fn invalid_max_activations(raw: i64) -> ApiError {
    ApiError::bad_request(
        codes::INVALID_MAX_ACTIVATIONS,
        format!(
            "maxActivations: {raw} is out of range; use 1 to {MAX_ACTIVATIONS_LIMIT}, \
             or null for unlimited"
        ),
    )
}

/// A string of at most `max_chars` characters.
pub fn text(field: &str, raw: String, max_chars: usize) -> Result<String, ApiError> {
    if raw.chars().count() > max_chars {
        return Err(ApiError::bad_request(
            codes::VALUE_TOO_LONG,
            format!("{field}: longer than {max_chars} characters"),
        ));
    }
    Ok(raw)
}

pub fn optional_text(
    field: &str,
    raw: Option<String>,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    raw.map(|raw| text(field, raw, max_chars)).transpose()
}

/// A string that is not blank, of at most `max_chars` characters.
pub fn required_text(field: &str, raw: String, max_chars: usize) -> Result<String, ApiError> {
    if raw.trim().is_empty() {
        return Err(ApiError::bad_request(
            codes::INVALID_FIELD,
            format!("{field}: must not be empty"),
        ));
    }
    text(field, raw, max_chars)
}

/// One of an enum's wire names.
pub fn variant<T: FromStr<Err = UnknownVariant>>(
    field: &str,
    raw: &str,
    code: &'static str,
) -> Result<T, ApiError> {
    raw.parse().map_err(|error: UnknownVariant| {
        ApiError::bad_request(
            code,
            format!("{field}: {} is not valid; {error}", quoted(raw)),
        )
    })
}

/// A JSON object (feature flags, metadata).
pub fn object(
    field: &str,
    value: serde_json::Value,
    code: &'static str,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            code,
            format!("{field}: must be a JSON object"),
        )),
    }
}

/// Free-form metadata: a JSON object.
pub fn metadata(value: serde_json::Value) -> Result<serde_json::Value, ApiError> {
    object("metadata", value, codes::INVALID_METADATA).map(serde_json::Value::Object)
}

/// An email address: one `@` with something on both sides, no spaces, at most 254 characters.
pub fn email(raw: String) -> Result<String, ApiError> {
    let raw = raw.trim().to_owned();
    let plausible = raw.len() <= 254
        && !raw.chars().any(char::is_whitespace)
        && raw.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if plausible {
        Ok(raw)
    } else {
        Err(ApiError::bad_request(
            codes::INVALID_EMAIL,
            format!("email: {} is not an email address", quoted(&raw)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_accept_iso_8601_and_plain_dates() {
        let at = timestamp("expiresAt", "2027-01-15T00:00:00Z").expect("rfc3339");
        assert_eq!(timestamp("expiresAt", "2027-01-15").expect("date"), at);
        assert_eq!(
            timestamp("expiresAt", "2027-01-15T01:00:00+01:00").expect("offset"),
            at
        );
        let error = timestamp("expiresAt", "15/01/2027").expect_err("not iso");
        assert_eq!(error.code, codes::INVALID_DATE);
        assert!(error.message.starts_with("expiresAt:"));
    }

    #[test]
    fn max_activations_is_bounded() {
        assert_eq!(max_activations(5).ok(), Some(5));
        for bad in [0, -1, MAX_ACTIVATIONS_LIMIT + 1, i64::MAX] {
            assert_eq!(
                max_activations(bad).expect_err("out of range").code,
                codes::INVALID_MAX_ACTIVATIONS
            );
        }
    }

    #[test]
    fn long_input_is_not_echoed_whole() {
        let error = uuid("id", &"x".repeat(10_000)).expect_err("not a uuid");
        assert!(error.message.len() < 200);
    }

    #[test]
    fn emails_are_checked_loosely() {
        assert!(email("a@b.co".into()).is_ok());
        for bad in ["", "a", "a@b", "@b.co", "a b@c.co", "a@b@c.co"] {
            assert!(email(bad.into()).is_err(), "{bad}");
        }
    }
}
