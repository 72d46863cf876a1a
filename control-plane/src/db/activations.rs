//! Activations: the activation authority. Whether a new device may join a license is decided
//! in one transaction that locks the license row, evaluates it, counts its active devices and
//! inserts, so the limit holds however many control planes and data planes ask at once.

use chrono::{DateTime, Utc};
use license_shared::protocol::EntityKind;
use license_shared::{Check, Denial, LicenseKey, evaluate};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::licenses::{self, LicenseRecord};
use super::revision;

/// A device asking to be activated.
#[derive(Debug, Clone)]
pub(crate) struct DeviceInfo {
    pub device_id: String,
    pub device_name: Option<String>,
    /// Facts the client reports (os, hostname, app version, …), a JSON object.
    pub client_facts: serde_json::Value,
}

/// One device on a license.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Activation {
    pub id: Uuid,
    pub device_id: String,
    pub device_name: Option<String>,
    pub client_facts: serde_json::Value,
    pub activated_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

/// What an activation request came to.
#[derive(Debug)]
pub(crate) enum ActivationOutcome {
    /// The device was added; `license` includes it.
    Activated {
        license: LicenseRecord,
        activation: Activation,
    },
    /// The device was already active: nothing changed but its last-seen time.
    AlreadyActive {
        license: LicenseRecord,
        activation: Activation,
    },
    LicenseNotFound,
    Denied(Denial),
    /// The caller's deadline passed before the decision could commit: nothing changed.
    DeadlinePassed,
    /// Every seat is taken.
    LimitReached {
        max_activations: i32,
    },
}

const COLUMNS: &str =
    "id, device_id, device_name, client_facts, activated_at, last_seen_at, deactivated_at";

/// Activates `device` on the license `key` if the license is valid and has a free seat.
pub(crate) async fn activate(
    pool: &PgPool,
    key: &LicenseKey,
    product_id: Option<Uuid>,
    device: DeviceInfo,
    now: DateTime<Utc>,
    deadline: Option<DateTime<Utc>>,
) -> sqlx::Result<ActivationOutcome> {
    let mut tx = pool.begin().await?;
    // Lock first, then read in a new statement: under READ COMMITTED a statement that waited
    // for the lock would still see the active devices as they were before the wait.
    let Some(license_id) = licenses::lock_by_key(&mut tx, key).await? else {
        return Ok(ActivationOutcome::LicenseNotFound);
    };
    let license = licenses::fetch_by_id(&mut *tx, license_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let check = Check {
        now,
        product_id,
        device_id: None,
    };
    if let Err(denial) = evaluate(&license.license, &check) {
        return Ok(ActivationOutcome::Denied(denial));
    }
    if license.license.is_device_active(&device.device_id) {
        let sql = format!(
            "UPDATE activations SET last_seen_at = now() \
             WHERE license_id = $1 AND device_id = $2 AND deactivated_at IS NULL \
             RETURNING {COLUMNS}"
        );
        let activation: Activation = sqlx::query_as(&sql)
            .bind(license_id)
            .bind(&device.device_id)
            .fetch_one(&mut *tx)
            .await?;
        if too_late(deadline) {
            return Ok(ActivationOutcome::DeadlinePassed);
        }
        tx.commit().await?;
        return Ok(ActivationOutcome::AlreadyActive {
            license,
            activation,
        });
    }
    if let Some(max_activations) = license.license.max_activations {
        let active = i64::try_from(license.license.current_activations()).unwrap_or(i64::MAX);
        if active >= i64::from(max_activations) {
            return Ok(ActivationOutcome::LimitReached { max_activations });
        }
    }
    let sql = format!(
        "INSERT INTO activations (id, license_id, device_id, device_name, client_facts) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
    let activation: Activation = sqlx::query_as(&sql)
        .bind(Uuid::new_v4())
        .bind(license_id)
        .bind(&device.device_id)
        .bind(&device.device_name)
        .bind(&device.client_facts)
        .fetch_one(&mut *tx)
        .await?;
    revision::stamp(&mut tx, EntityKind::License, license_id).await?;
    let license = licenses::fetch_by_id(&mut *tx, license_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    if too_late(deadline) {
        return Ok(ActivationOutcome::DeadlinePassed);
    }
    tx.commit().await?;
    Ok(ActivationOutcome::Activated {
        license,
        activation,
    })
}

/// The license's devices, newest first; only active ones unless `include_inactive`.
/// `None` when the license does not exist.
pub(crate) async fn list(
    pool: &PgPool,
    key: &LicenseKey,
    include_inactive: bool,
) -> sqlx::Result<Option<Vec<Activation>>> {
    let license_id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM licenses WHERE key = $1")
        .bind(key.as_str())
        .fetch_optional(pool)
        .await?;
    let Some(license_id) = license_id else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM activations WHERE license_id = $1 \
         AND ($2 OR deactivated_at IS NULL) ORDER BY activated_at DESC, id"
    );
    let activations = sqlx::query_as(&sql)
        .bind(license_id)
        .bind(include_inactive)
        .fetch_all(pool)
        .await?;
    Ok(Some(activations))
}

/// What a deactivation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeactivationOutcome {
    Deactivated,
    LicenseNotFound,
    DeviceNotActive,
    /// The caller's deadline passed before the seat could be freed: nothing changed.
    DeadlinePassed,
}

/// Whether a caller's deadline has passed; checked right before committing, so that a
/// request whose client has given up is never decided after that.
fn too_late(deadline: Option<DateTime<Utc>>) -> bool {
    deadline.is_some_and(|deadline| Utc::now() >= deadline)
}

/// Frees the seat `device_id` holds on license `key`.
pub(crate) async fn deactivate(
    pool: &PgPool,
    key: &LicenseKey,
    device_id: &str,
    deadline: Option<DateTime<Utc>>,
) -> sqlx::Result<DeactivationOutcome> {
    let mut tx = pool.begin().await?;
    let Some(license_id) = licenses::lock_by_key(&mut tx, key).await? else {
        return Ok(DeactivationOutcome::LicenseNotFound);
    };
    let updated = sqlx::query(
        "UPDATE activations SET deactivated_at = now() \
         WHERE license_id = $1 AND device_id = $2 AND deactivated_at IS NULL",
    )
    .bind(license_id)
    .bind(device_id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(DeactivationOutcome::DeviceNotActive);
    }
    revision::stamp(&mut tx, EntityKind::License, license_id).await?;
    if too_late(deadline) {
        return Ok(DeactivationOutcome::DeadlinePassed);
    }
    tx.commit().await?;
    Ok(DeactivationOutcome::Deactivated)
}
