//! LicenseSpring's error codes (seed 002 and LicenseSpring's error list), in the shared
//! `{status, code, message}` shape, and how our own verdicts map onto them. LicenseSpring
//! answers every client error with 400, authentication failures included; only a body over
//! the data plane's `--max-body-bytes` is 413.

use license_shared::protocol::AuthorityError;
use license_shared::{ApiError, Denial};

pub const MISSING_HEADERS: &str = "missing_headers";
pub const MISSING_PARAMETERS: &str = "missing_parameters";
pub const VALIDATION_ERROR: &str = "validation_error";
pub const INVALID_JSON: &str = "invalid_json";
pub const DATE_HEADER_DIFF: &str = "date_header_diff";
pub const AUTHORIZATION_INVALID_HEADERS: &str = "authorization_invalid_headers";
pub const AUTHORIZATION_MISSING_PARAMS: &str = "authorization_missing_params";
pub const HMAC_REQUIRED: &str = "hmac_required";
pub const INVALID_API_KEY: &str = "invalid_api_key";
pub const SIGNATURE_MISMATCH: &str = "signature_mismatch";
pub const API_KEY_PRODUCT_NOT_ALLOWED: &str = "api_key_product_not_allowed";
pub const UNKNOWN_PRODUCT: &str = "unknown_product";
pub const LICENSE_NOT_FOUND: &str = "license_not_found";
pub const LICENSE_NOT_ENABLED: &str = "license_not_enabled";
pub const LICENSE_NOT_ACTIVE: &str = "license_not_active";
pub const LICENSE_EXPIRED: &str = "license_expired";
pub const DEVICE_NOT_FOUND: &str = "device_not_found";
pub const LICENSE_ACTIVATED_MAX_TIMES: &str = "license_activated_max_times";
/// Not LicenseSpring's: the data plane has not yet received the cluster's signing key.
pub const SIGNING_KEY_UNAVAILABLE: &str = "signing_key_unavailable";

/// A LicenseSpring client error (always 400).
pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(code, message)
}

/// The LicenseSpring answer for a license `evaluate` refused.
pub fn denied(denial: Denial) -> ApiError {
    match denial {
        Denial::Revoked => bad_request(LICENSE_NOT_ENABLED, "the license is not enabled (revoked)"),
        Denial::Suspended => bad_request(
            LICENSE_NOT_ENABLED,
            "the license is not enabled (suspended)",
        ),
        Denial::NotYetStarted => bad_request(
            LICENSE_NOT_ACTIVE,
            "the license is not active: its period has not started",
        ),
        Denial::Expired => bad_request(LICENSE_EXPIRED, "the license has expired"),
        Denial::DeviceNotActivated => bad_request(
            DEVICE_NOT_FOUND,
            "an active device matching the hardware_id was not found",
        ),
        Denial::ProductMismatch => bad_request(
            LICENSE_NOT_FOUND,
            "no license with the provided license_key for this product",
        ),
    }
}

/// The LicenseSpring answer for a refusal of the control plane's authority. Unavailability
/// (503) is not the client's fault and keeps its native code.
pub fn from_authority(error: AuthorityError) -> ApiError {
    match error {
        AuthorityError::LicenseNotFound => bad_request(
            LICENSE_NOT_FOUND,
            "license with the provided license_key not found",
        ),
        AuthorityError::Denied { denial } => denied(denial),
        limit @ AuthorityError::LimitReached { .. } => {
            bad_request(LICENSE_ACTIVATED_MAX_TIMES, limit.to_string())
        }
        AuthorityError::DeviceNotActive => bad_request(
            DEVICE_NOT_FOUND,
            "an active device matching the hardware_id was not found",
        ),
        unavailable @ (AuthorityError::Unreachable { .. }
        | AuthorityError::DeadlinePassed
        | AuthorityError::Busy
        | AuthorityError::DatabaseUnavailable { .. }) => ApiError::from(unavailable),
    }
}
