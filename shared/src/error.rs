//! The common API error: `{"status": 404, "code": "license_not_found", "message": "…"}`.
//!
//! Every native and LicenseSpring-style endpoint answers failures in this shape, with one of
//! the machine-readable [`codes`]. With the `axum` feature it is also an axum response.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Machine-readable error codes, shared by the control plane and the data planes.
pub mod codes {
    // 400: the request itself is wrong.
    pub const MALFORMED_JSON: &str = "malformed_json";
    pub const INVALID_FIELD: &str = "invalid_field";
    pub const MISSING_FIELD: &str = "missing_field";
    pub const UNKNOWN_FIELD: &str = "unknown_field";
    pub const INVALID_QUERY: &str = "invalid_query";
    pub const INVALID_UUID: &str = "invalid_uuid";
    pub const INVALID_LICENSE_KEY: &str = "invalid_license_key";
    pub const INVALID_KEY_PREFIX: &str = "invalid_key_prefix";
    pub const INVALID_DATE: &str = "invalid_date";
    pub const INVALID_DATE_RANGE: &str = "invalid_date_range";
    pub const INVALID_STATUS: &str = "invalid_status";
    pub const INVALID_LICENSE_TYPE: &str = "invalid_license_type";
    pub const INVALID_AUTHORIZATION_METHOD: &str = "invalid_authorization_method";
    pub const INVALID_MAX_ACTIVATIONS: &str = "invalid_max_activations";
    pub const INVALID_FEATURES: &str = "invalid_features";
    pub const INVALID_METADATA: &str = "invalid_metadata";
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const INVALID_DEVICE_ID: &str = "invalid_device_id";
    pub const VALUE_TOO_LONG: &str = "value_too_long";
    pub const EMPTY_UPDATE: &str = "empty_update";
    pub const UNKNOWN_PRODUCT: &str = "unknown_product";
    pub const UNKNOWN_CUSTOMER: &str = "unknown_customer";
    pub const INVALID_PRODUCTS: &str = "invalid_products";
    // 401 / 403: who is asking.
    pub const MISSING_TOKEN: &str = "missing_token";
    pub const INVALID_TOKEN: &str = "invalid_token";
    pub const READ_ONLY_TOKEN: &str = "read_only_token";
    // 403: the license says no.
    pub const PRODUCT_MISMATCH: &str = "product_mismatch";
    pub const LICENSE_REVOKED: &str = "license_revoked";
    pub const LICENSE_SUSPENDED: &str = "license_suspended";
    pub const LICENSE_NOT_STARTED: &str = "license_not_started";
    pub const LICENSE_EXPIRED: &str = "license_expired";
    pub const DEVICE_NOT_ACTIVATED: &str = "device_not_activated";
    pub const ACTIVATION_LIMIT_REACHED: &str = "activation_limit_reached";
    // 404 / 405.
    pub const NOT_FOUND: &str = "not_found";
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    pub const LICENSE_NOT_FOUND: &str = "license_not_found";
    pub const PRODUCT_NOT_FOUND: &str = "product_not_found";
    pub const CUSTOMER_NOT_FOUND: &str = "customer_not_found";
    pub const ACTIVATION_NOT_FOUND: &str = "activation_not_found";
    pub const TOKEN_NOT_FOUND: &str = "token_not_found";
    pub const CREDENTIAL_NOT_FOUND: &str = "credential_not_found";
    // 409: conflicts with what is stored.
    pub const PRODUCT_CODE_TAKEN: &str = "product_code_taken";
    pub const CUSTOMER_EMAIL_TAKEN: &str = "customer_email_taken";
    pub const TOKEN_NAME_TAKEN: &str = "token_name_taken";
    pub const CREDENTIAL_NAME_TAKEN: &str = "credential_name_taken";
    pub const LICENSE_KEY_TAKEN: &str = "license_key_taken";
    pub const PRODUCT_IN_USE: &str = "product_in_use";
    pub const CUSTOMER_IN_USE: &str = "customer_in_use";
    pub const CONFLICT: &str = "conflict";
    // 413 / 415.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    // 5xx.
    pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";
    pub const CONTROL_PLANE_UNAVAILABLE: &str = "control_plane_unavailable";
    pub const INTERNAL_ERROR: &str = "internal_error";
}

/// An error answer: HTTP status, machine-readable code, human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: Cow<'static, str>,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: Cow::Borrowed(code),
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(401, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(503, code, message)
    }

    /// A failure that is our fault. The message is deliberately vague: the cause goes to the log.
    pub fn internal() -> Self {
        Self::new(
            500,
            codes::INTERNAL_ERROR,
            "internal error; see the server log",
        )
    }

    /// The answer for a license denied by [`crate::evaluate`].
    pub fn denied(denial: crate::Denial) -> Self {
        Self::forbidden(denial.code(), denial.message())
    }
}

/// The message a caught panic carried (`panic!` with a literal or a formatted string), for the
/// log.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_to_the_documented_shape() {
        let error = ApiError::not_found(codes::LICENSE_NOT_FOUND, "no license with that key");
        assert_eq!(
            serde_json::to_value(&error).expect("serializes"),
            serde_json::json!({
                "status": 404,
                "code": "license_not_found",
                "message": "no license with that key"
            })
        );
    }
}
