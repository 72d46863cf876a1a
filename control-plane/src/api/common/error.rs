//! The control plane's handler error: an [`ApiError`] decided by a handler, a database error
//! that is mapped here, in one place (unreachable database → 503, unique violation → 409 with
//! the conflicting field's code, check violation → 400, anything else → 500), or an unexpected
//! error with its context. Every 500 is logged once, with the whole cause chain, and the
//! client gets a vague message.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use license_shared::protocol::AuthorityError;
use license_shared::{ApiError, codes};

use crate::db;

#[derive(Debug)]
pub(crate) enum AppError {
    Api(ApiError),
    /// A 401 that tells the client which scheme to use (`WWW-Authenticate`).
    Challenge(ApiError, HeaderValue),
    Database(sqlx::Error),
    /// Something that should not happen: logged with its whole cause chain, answered 500.
    Unexpected(anyhow::Error),
}

pub(crate) type AppResult<T> = Result<T, AppError>;

impl From<ApiError> for AppError {
    fn from(error: ApiError) -> Self {
        AppError::Api(error)
    }
}

impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> Self {
        AppError::Unexpected(error)
    }
}

impl From<AuthorityError> for AppError {
    fn from(error: AuthorityError) -> Self {
        AppError::Api(error.into())
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::Database(error)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Api(error) => error.into_response(),
            AppError::Challenge(error, scheme) => {
                ([(header::WWW_AUTHENTICATE, scheme)], error).into_response()
            }
            AppError::Database(error) => database_error(&error).into_response(),
            AppError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "unexpected error");
                ApiError::internal().into_response()
            }
        }
    }
}

/// The client-facing answer for a database error (and the log line for it).
pub(crate) fn database_error(error: &sqlx::Error) -> ApiError {
    if db::is_unavailable(error) {
        tracing::warn!(%error, "database unavailable");
        return ApiError::unavailable(
            codes::DATABASE_UNAVAILABLE,
            "the database is unavailable; retry later",
        );
    }
    if let Some((kind, constraint)) = db::violated_constraint(error) {
        if kind == db::ViolationKind::Unique {
            let (code, message) = match constraint.as_str() {
                "products_code_key" => {
                    (codes::PRODUCT_CODE_TAKEN, "a product with this code exists")
                }
                "customers_email" => (
                    codes::CUSTOMER_EMAIL_TAKEN,
                    "a customer with this email exists",
                ),
                "admin_tokens_name_key" => {
                    (codes::TOKEN_NAME_TAKEN, "a token with this name exists")
                }
                "api_credentials_name_key" => (
                    codes::CREDENTIAL_NAME_TAKEN,
                    "a credential with this name exists",
                ),
                "licenses_key_key" => (codes::LICENSE_KEY_TAKEN, "a license with this key exists"),
                _ => (codes::CONFLICT, "conflicts with a stored record"),
            };
            return ApiError::conflict(code, message);
        }
    }
    if let sqlx::Error::Database(db_error) = error {
        if db_error.constraint() == Some("licenses_check") {
            return ApiError::bad_request(
                codes::INVALID_DATE_RANGE,
                "startsAt must be before expiresAt",
            );
        }
    }
    tracing::error!(error = format!("{error:#}"), "unexpected database error");
    ApiError::internal()
}
