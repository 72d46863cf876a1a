//! The answers of the public `verify` and `validate` endpoints (seed 003's shape), shared so the
//! control plane (from the database) and the data planes (from memory) answer byte for byte
//! alike.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::evaluate::{Check, evaluate};
use crate::key::LicenseKey;
use crate::model::{EffectiveStatus, License};
use crate::protocol::ActivationGranted;

/// The verdict on a license, plus the reason when it is not valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyAnswer {
    pub valid: bool,
    pub status: EffectiveStatus,
    /// Why the license is not valid (a code such as `license_expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub license_key: LicenseKey,
    pub product_id: Uuid,
    pub edition: Option<String>,
    pub features: serde_json::Map<String, serde_json::Value>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_activations: Option<i32>,
    pub current_activations: usize,
}

impl VerifyAnswer {
    /// Evaluates `license` for `check` and describes the result.
    pub fn new(license: &License, check: &Check<'_>) -> Self {
        let verdict = evaluate(license, check);
        VerifyAnswer {
            valid: verdict.is_ok(),
            status: license.effective_status(check.now),
            reason: verdict.err().map(|denial| denial.code().to_owned()),
            license_key: license.key.clone(),
            product_id: license.product_id,
            edition: license.edition.clone(),
            features: license.features.clone(),
            starts_at: license.starts_at,
            expires_at: license.expires_at,
            max_activations: license.max_activations,
            current_activations: license.current_activations(),
        }
    }
}

/// A successful activation: the verdict plus the device's seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateAnswer {
    #[serde(flatten)]
    pub license: VerifyAnswer,
    /// False when this call took a new seat, true when the device already held one.
    pub already_activated: bool,
    pub activation: ActivationAnswer,
}

impl ValidateAnswer {
    /// The answer to an activation the authority granted.
    pub fn granted(
        granted: ActivationGranted,
        product_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Self {
        let check = Check {
            now,
            product_id,
            device_id: Some(&granted.device_id),
        };
        ValidateAnswer {
            license: VerifyAnswer::new(&granted.license, &check),
            already_activated: granted.already_activated,
            activation: ActivationAnswer {
                device_id: granted.device_id,
                device_name: granted.device_name,
                activated_at: granted.activated_at,
            },
        }
    }
}

/// The seat a device holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationAnswer {
    pub device_id: String,
    pub device_name: Option<String>,
    pub activated_at: DateTime<Utc>,
}
