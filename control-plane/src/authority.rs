//! The activation authority: the one place that decides whether a device may take a seat, for
//! the control plane's own `validate` endpoint and for every data plane that forwards a new
//! device over the cluster link. Both get the same answer, in the shared error shape.

use chrono::{DateTime, Utc};
use license_shared::protocol::{ActivationGranted, ActivationRequest};
use license_shared::public_api::license_not_found;
use license_shared::{ApiError, License, LicenseKey, codes};
use sqlx::PgPool;

use crate::api::error::database_error;
use crate::db::activations::{self, ActivationOutcome, DeactivationOutcome, DeviceInfo};
use crate::db::licenses;

/// Activates the requested device, or says why not.
pub async fn activate(
    pool: &PgPool,
    request: ActivationRequest,
    now: DateTime<Utc>,
) -> Result<ActivationGranted, ApiError> {
    let key = request.license_key;
    let device = DeviceInfo {
        device_id: request.device_id,
        device_name: request.device_name,
        client_facts: request.client_facts,
    };
    let outcome = activations::activate(pool, &key, request.product_id, device, now)
        .await
        .map_err(|error| database_error(&error))?;
    let (license, activation, already_activated) = match outcome {
        ActivationOutcome::Activated {
            license,
            activation,
        } => (license, activation, false),
        ActivationOutcome::AlreadyActive {
            license,
            activation,
        } => (license, activation, true),
        ActivationOutcome::LicenseNotFound => return Err(license_not_found(&key)),
        ActivationOutcome::Denied(denial) => return Err(ApiError::denied(denial)),
        ActivationOutcome::LimitReached { max_activations } => {
            return Err(ApiError::forbidden(
                codes::ACTIVATION_LIMIT_REACHED,
                format!(
                    "all {max_activations} activation(s) of this license are in use; \
                     deactivate a device first"
                ),
            ));
        }
    };
    Ok(ActivationGranted {
        license: license.license,
        already_activated,
        device_id: activation.device_id,
        device_name: activation.device_name,
        activated_at: activation.activated_at,
    })
}

/// Frees the seat `device_id` holds; returns the license as it is afterwards.
pub async fn deactivate(
    pool: &PgPool,
    key: &LicenseKey,
    device_id: &str,
) -> Result<License, ApiError> {
    let outcome = activations::deactivate(pool, key, device_id)
        .await
        .map_err(|error| database_error(&error))?;
    match outcome {
        DeactivationOutcome::Deactivated => {}
        DeactivationOutcome::LicenseNotFound => return Err(license_not_found(key)),
        DeactivationOutcome::DeviceNotActive => {
            return Err(ApiError::not_found(
                codes::ACTIVATION_NOT_FOUND,
                "this device is not active on the license",
            ));
        }
    }
    licenses::get_by_key(pool, key)
        .await
        .map_err(|error| database_error(&error))?
        .map(|record| record.license)
        .ok_or_else(|| license_not_found(key))
}
