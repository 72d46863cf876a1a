//! The authority's answers on the wire: [`AuthorityError`] says, as a type rather than an HTTP
//! error, why the control plane did not grant or free a seat, so that each API dialect maps
//! the variants to its own codes and shapes.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, codes};
use crate::evaluate::Denial;

/// Why the control plane's authority refused, or could not decide, a seat request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthorityError {
    #[error("no license with that key")]
    LicenseNotFound,
    #[error("{}", .denial.message())]
    Denied { denial: Denial },
    #[error(
        "all {max_activations} activation(s) of this license are in use; deactivate a device first"
    )]
    LimitReached { max_activations: i32 },
    #[error("this device is not active on the license")]
    DeviceNotActive,
    /// The request's deadline passed before it could be decided: nothing was changed, and the
    /// data plane has answered (or will answer) 503.
    #[error("the request's deadline passed before the control plane could decide it")]
    DeadlinePassed,
    /// The data plane could not reach the control plane, or got no answer in time (never sent
    /// by a control plane).
    #[error("{message}")]
    Unreachable { message: String },
    /// The control plane has as many of this data plane's requests in hand as it takes at
    /// once; nothing was changed.
    #[error("the control plane is busy with this data plane's earlier requests; try again")]
    Busy,
    /// The control plane could not decide: its database is unreachable or too slow.
    #[error("{message}")]
    DatabaseUnavailable { message: String },
}

impl From<AuthorityError> for ApiError {
    /// The native shape (seed 003); other dialects map the variants themselves.
    fn from(error: AuthorityError) -> Self {
        let message = error.to_string();
        match error {
            AuthorityError::LicenseNotFound => {
                ApiError::not_found(codes::LICENSE_NOT_FOUND, message)
            }
            AuthorityError::Denied { denial } => ApiError::denied(denial),
            AuthorityError::LimitReached { .. } => {
                ApiError::forbidden(codes::ACTIVATION_LIMIT_REACHED, message)
            }
            AuthorityError::DeviceNotActive => {
                ApiError::not_found(codes::ACTIVATION_NOT_FOUND, message)
            }
            AuthorityError::Unreachable { .. }
            | AuthorityError::DeadlinePassed
            | AuthorityError::Busy => {
                ApiError::unavailable(codes::CONTROL_PLANE_UNAVAILABLE, message)
            }
            AuthorityError::DatabaseUnavailable { .. } => {
                ApiError::unavailable(codes::DATABASE_UNAVAILABLE, message)
            }
        }
    }
}
