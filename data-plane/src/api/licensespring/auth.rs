//! LicenseSpring request authentication, as its client SDKs do it: a `Date` header (RFC 7231,
//! at most 15 minutes off) and `Authorization: algorithm="hmac-sha256",headers="date",
//! signature="<base64 HMAC-SHA256(shared_key, "licenseSpring\ndate: <Date>")>",apiKey="<key>"`.
//! The signature is checked in constant time against the exact `Date` header sent.

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, DATE};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use license_shared::ApiError;
use license_shared::credential::ApiCredential;
use sha2::Sha256;

use super::errors::{
    AUTHORIZATION_INVALID_HEADERS, AUTHORIZATION_MISSING_PARAMS, DATE_HEADER_DIFF, HMAC_REQUIRED,
    INVALID_API_KEY, MISSING_HEADERS, SIGNATURE_MISMATCH, bad_request,
};
use crate::store::Keyring;

/// How far the `Date` header may be from the data plane's clock, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The parts of an `Authorization` header.
#[derive(Debug, Default)]
struct AuthorizationParams<'a> {
    algorithm: Option<&'a str>,
    headers: Option<&'a str>,
    signature: Option<&'a str>,
    api_key: Option<&'a str>,
}

/// The credential that signed this request, or why the request is refused.
pub fn authenticate<'k>(
    headers: &HeaderMap,
    keyring: &'k Keyring,
    now: SystemTime,
) -> Result<&'k ApiCredential, ApiError> {
    let date = header(headers, DATE)?;
    let authorization = header(headers, AUTHORIZATION)?;
    let sent = httpdate::parse_http_date(date).map_err(|_| {
        bad_request(
            AUTHORIZATION_INVALID_HEADERS,
            "the Date header is not an RFC 7231 date (e.g. \"Tue, 07 Jun 2014 20:51:35 GMT\")",
        )
    })?;
    let skew = now
        .duration_since(sent)
        .or_else(|ahead| Ok::<_, ()>(ahead.duration()))
        .unwrap_or_default();
    if skew > MAX_CLOCK_SKEW {
        return Err(bad_request(
            DATE_HEADER_DIFF,
            format!(
                "the Date header is {}s away from the server's clock; at most {}s is allowed",
                skew.as_secs(),
                MAX_CLOCK_SKEW.as_secs()
            ),
        ));
    }
    let params = parse_authorization(authorization)?;
    let missing: Vec<&str> = [
        ("algorithm", params.algorithm),
        ("headers", params.headers),
        ("signature", params.signature),
        ("apiKey", params.api_key),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_none_or(str::is_empty))
    .map(|(name, _)| name)
    .collect();
    if !missing.is_empty() {
        return Err(bad_request(
            AUTHORIZATION_MISSING_PARAMS,
            format!(
                "some parameters are missing in authorization: {}",
                missing.join(", ")
            ),
        ));
    }
    let (Some(algorithm), Some(signed_headers), Some(signature), Some(api_key)) = (
        params.algorithm,
        params.headers,
        params.signature,
        params.api_key,
    ) else {
        unreachable!("every parameter was checked present above");
    };
    if !algorithm.eq_ignore_ascii_case("hmac-sha256") {
        return Err(bad_request(
            HMAC_REQUIRED,
            "hmac-sha256 is the required algorithm",
        ));
    }
    if !signed_headers.eq_ignore_ascii_case("date") {
        return Err(bad_request(
            AUTHORIZATION_INVALID_HEADERS,
            "the signed headers must be exactly \"date\"",
        ));
    }
    let credential = keyring
        .credential(api_key)
        .ok_or_else(|| bad_request(INVALID_API_KEY, "the provided api key is not valid"))?;
    let signature = STANDARD.decode(signature).map_err(|_| {
        bad_request(
            AUTHORIZATION_INVALID_HEADERS,
            "the signature is not standard base64",
        )
    })?;
    let mut mac = Hmac::<Sha256>::new_from_slice(credential.shared_key.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"licenseSpring\ndate: ");
    mac.update(date.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| bad_request(SIGNATURE_MISMATCH, "signature mismatch"))?;
    Ok(credential)
}

/// The header's value, or `missing_headers`.
fn header(headers: &HeaderMap, name: axum::http::HeaderName) -> Result<&str, ApiError> {
    let value = headers.get(&name).ok_or_else(|| {
        bad_request(
            MISSING_HEADERS,
            format!("some headers are missing: {}", display_name(&name)),
        )
    })?;
    value.to_str().map_err(|_| {
        bad_request(
            AUTHORIZATION_INVALID_HEADERS,
            format!("the {} header is not visible ASCII", display_name(&name)),
        )
    })
}

fn display_name(name: &axum::http::HeaderName) -> &'static str {
    if name == DATE {
        "Date"
    } else {
        "Authorization"
    }
}

/// Parses `key="value",key="value"` (keys case-insensitive, spaces allowed around commas).
fn parse_authorization(raw: &str) -> Result<AuthorizationParams<'_>, ApiError> {
    let malformed = || {
        bad_request(
            AUTHORIZATION_INVALID_HEADERS,
            "the Authorization header must be algorithm=\"hmac-sha256\",headers=\"date\",\
             signature=\"…\",apiKey=\"…\"",
        )
    };
    let trimmed = raw.trim();
    if trimmed
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "))
    {
        return Err(bad_request(
            HMAC_REQUIRED,
            "bearer (OAuth) authorization is not supported here; sign requests with an API key",
        ));
    }
    let mut params = AuthorizationParams::default();
    let mut rest = trimmed;
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or_else(malformed)?;
        let after = after.strip_prefix('"').ok_or_else(malformed)?;
        let (value, after) = after.split_once('"').ok_or_else(malformed)?;
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "algorithm" => &mut params.algorithm,
            "headers" => &mut params.headers,
            "signature" => &mut params.signature,
            "apikey" => &mut params.api_key,
            _ => return Err(malformed()),
        };
        *slot = Some(value);
        rest = after.trim_start();
        rest = match rest.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err(malformed()),
        };
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use chrono::Utc;
    use license_shared::credential::SharedKey;
    use license_shared::protocol::Change;
    use uuid::Uuid;

    use super::*;
    use crate::store::SnapshotBuilder;

    fn keyring() -> Keyring {
        let mut builder = SnapshotBuilder::new(None);
        builder.push(Change::Credential(ApiCredential {
            id: Uuid::new_v4(),
            name: "app".into(),
            api_key: "api-key-1".into(),
            shared_key: SharedKey::new("shared-secret".into()),
            product_ids: vec![],
            revision: 1,
            created_at: Utc::now(),
        }));
        builder.build(1).keyring().clone()
    }

    fn signed(date: &str, shared_key: &str, api_key: &str) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(shared_key.as_bytes()).expect("any key");
        mac.update(format!("licenseSpring\ndate: {date}").as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(DATE, HeaderValue::from_str(date).expect("ascii"));
        let authorization = format!(
            "algorithm=\"hmac-sha256\",headers=\"date\",signature=\"{signature}\",apiKey=\"{api_key}\""
        );
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&authorization).expect("ascii"),
        );
        headers
    }

    fn code(result: Result<&ApiCredential, ApiError>) -> String {
        result
            .err()
            .map(|error| error.code.into_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_correctly_signed_request_names_its_credential() {
        let keyring = keyring();
        let now = SystemTime::now();
        let date = httpdate::fmt_http_date(now);
        let credential = authenticate(&signed(&date, "shared-secret", "api-key-1"), &keyring, now)
            .expect("authenticated");
        assert_eq!(credential.name, "app");
    }

    #[test]
    fn each_authentication_failure_has_its_code() {
        let keyring = keyring();
        let now = SystemTime::now();
        let date = httpdate::fmt_http_date(now);
        let good = signed(&date, "shared-secret", "api-key-1");

        let mut no_date = good.clone();
        no_date.remove(DATE);
        assert_eq!(code(authenticate(&no_date, &keyring, now)), MISSING_HEADERS);
        let mut no_auth = good.clone();
        no_auth.remove(AUTHORIZATION);
        assert_eq!(code(authenticate(&no_auth, &keyring, now)), MISSING_HEADERS);

        let old = httpdate::fmt_http_date(now - Duration::from_secs(16 * 60));
        let stale = signed(&old, "shared-secret", "api-key-1");
        assert_eq!(code(authenticate(&stale, &keyring, now)), DATE_HEADER_DIFF);
        let ahead = httpdate::fmt_http_date(now + Duration::from_secs(16 * 60));
        let future = signed(&ahead, "shared-secret", "api-key-1");
        assert_eq!(code(authenticate(&future, &keyring, now)), DATE_HEADER_DIFF);

        let mut bad_date = good.clone();
        bad_date.insert(DATE, HeaderValue::from_static("yesterday"));
        assert_eq!(
            code(authenticate(&bad_date, &keyring, now)),
            AUTHORIZATION_INVALID_HEADERS
        );

        let wrong_key = signed(&date, "another-secret", "api-key-1");
        assert_eq!(
            code(authenticate(&wrong_key, &keyring, now)),
            SIGNATURE_MISMATCH
        );
        let unknown = signed(&date, "shared-secret", "api-key-2");
        assert_eq!(code(authenticate(&unknown, &keyring, now)), INVALID_API_KEY);

        let with = |authorization: &'static str| {
            let mut headers = good.clone();
            headers.insert(AUTHORIZATION, HeaderValue::from_static(authorization));
            code(authenticate(&headers, &keyring, now))
        };
        assert_eq!(with("garbage"), AUTHORIZATION_INVALID_HEADERS);
        assert_eq!(with("Bearer abc"), HMAC_REQUIRED);
        assert_eq!(
            with("algorithm=\"hmac-sha1\",headers=\"date\",signature=\"x\",apiKey=\"api-key-1\""),
            HMAC_REQUIRED
        );
        assert_eq!(
            with("algorithm=\"hmac-sha256\",headers=\"date\",apiKey=\"api-key-1\""),
            AUTHORIZATION_MISSING_PARAMS
        );
        assert_eq!(
            with("algorithm=\"hmac-sha256\",headers=\"host\",signature=\"x\",apiKey=\"api-key-1\""),
            AUTHORIZATION_INVALID_HEADERS
        );
    }
}
