//! The activation authority: the one place that decides whether a device may take a seat, for
//! the control plane's own `validate` endpoint and for every data plane that forwards a new
//! device over the cluster link. Both get the same typed answer ([`AuthorityError`] when
//! refused), which each API dialect maps to its own codes.
//!
//! A request may carry a deadline: it is checked right before the decision commits, so a
//! request whose client was already told 503 is never decided later.

use chrono::{DateTime, Utc};
use license_shared::protocol::{ActivationGranted, ActivationRequest, AuthorityError};
use license_shared::{License, LicenseKey};
use sqlx::PgPool;

use crate::db;
use crate::db::activations::{self, ActivationOutcome, DeactivationOutcome, DeviceInfo};
use crate::db::licenses;

/// Activates the requested device, or says why not.
pub(crate) async fn activate(
    pool: &PgPool,
    request: ActivationRequest,
    now: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
) -> Result<ActivationGranted, AuthorityError> {
    let key = request.license_key;
    let device = DeviceInfo {
        device_id: request.device_id,
        device_name: request.device_name,
        client_facts: request.client_facts,
    };
    let outcome = activations::activate(pool, &key, request.product_id, device, now, deadline)
        .await
        .map_err(|error| database_unavailable(&error))?;
    let (license, activation, already_activated) = match outcome {
        ActivationOutcome::Activated {
            license,
            activation,
        } => (license, activation, false),
        ActivationOutcome::AlreadyActive {
            license,
            activation,
        } => (license, activation, true),
        ActivationOutcome::LicenseNotFound => return Err(AuthorityError::LicenseNotFound),
        ActivationOutcome::Denied(denial) => return Err(AuthorityError::Denied { denial }),
        ActivationOutcome::LimitReached { max_activations } => {
            return Err(AuthorityError::LimitReached { max_activations });
        }
        ActivationOutcome::DeadlinePassed => return Err(AuthorityError::DeadlinePassed),
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
pub(crate) async fn deactivate(
    pool: &PgPool,
    key: &LicenseKey,
    device_id: &str,
    deadline: Option<DateTime<Utc>>,
) -> Result<License, AuthorityError> {
    let outcome = activations::deactivate(pool, key, device_id, deadline)
        .await
        .map_err(|error| database_unavailable(&error))?;
    match outcome {
        DeactivationOutcome::Deactivated => {}
        DeactivationOutcome::LicenseNotFound => return Err(AuthorityError::LicenseNotFound),
        DeactivationOutcome::DeviceNotActive => return Err(AuthorityError::DeviceNotActive),
        DeactivationOutcome::DeadlinePassed => return Err(AuthorityError::DeadlinePassed),
    }
    licenses::get_by_key(pool, key)
        .await
        .map_err(|error| database_unavailable(&error))?
        .map(|record| record.license)
        .ok_or(AuthorityError::LicenseNotFound)
}

/// A database error during a decision: logged here with its cause, reported as unavailable
/// (the decision was not made, nothing was changed).
fn database_unavailable(error: &sqlx::Error) -> AuthorityError {
    if db::is_unavailable(error) {
        tracing::warn!(%error, "database unavailable for an activation decision");
    } else {
        tracing::error!(
            error = format!("{error:#}"),
            "an activation decision failed"
        );
    }
    AuthorityError::DatabaseUnavailable {
        message: "the database is unavailable; retry later".to_owned(),
    }
}
