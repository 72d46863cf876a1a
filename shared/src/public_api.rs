//! The public `verify` and `validate` endpoints (seed 003's shape): their requests, how they are
//! checked, and their answers, shared so that the control plane (from the database) and the
//! data planes (from memory) accept the same input and answer byte for byte alike.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, codes};
use crate::evaluate::{Check, evaluate};
use crate::fields::{self, SHORT_TEXT};
use crate::key::LicenseKey;
use crate::model::{EffectiveStatus, License};
use crate::protocol::{ActivationGranted, ActivationRequest};

/// `POST /api/licenses/verify`. Unknown fields are ignored so that clients may send more.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    pub license_key: String,
    /// When given, the license must belong to this product.
    pub product_id: Option<String>,
    /// When given, this device must be activated on the license.
    pub device_id: Option<String>,
}

/// A checked verify request.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyQuery {
    pub license_key: LicenseKey,
    pub product_id: Option<Uuid>,
    pub device_id: Option<String>,
}

impl VerifyRequest {
    pub fn parse(self) -> Result<VerifyQuery, ApiError> {
        Ok(VerifyQuery {
            license_key: fields::license_key(&self.license_key)?,
            product_id: optional_product(self.product_id.as_deref())?,
            device_id: self.device_id.map(device_id).transpose()?,
        })
    }
}

/// `POST /api/licenses/validate`: verify and activate this device.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateRequest {
    pub license_key: String,
    pub device_id: String,
    pub device_name: Option<String>,
    pub product_id: Option<String>,
    /// Facts about the device (os, hostname, app version, …), a JSON object.
    pub client_facts: Option<serde_json::Value>,
}

impl ValidateRequest {
    pub fn parse(self) -> Result<ActivationRequest, ApiError> {
        Ok(ActivationRequest {
            license_key: fields::license_key(&self.license_key)?,
            product_id: optional_product(self.product_id.as_deref())?,
            device_id: device_id(self.device_id)?,
            device_name: fields::optional_text("deviceName", self.device_name, SHORT_TEXT)?,
            client_facts: self
                .client_facts
                .map(|facts| fields::object("clientFacts", facts, codes::INVALID_FIELD))
                .transpose()?
                .map_or_else(|| serde_json::json!({}), serde_json::Value::Object),
        })
    }
}

fn optional_product(raw: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    raw.map(|raw| fields::uuid("productId", raw)).transpose()
}

/// A device id: 1 to 256 characters, not blank.
pub fn device_id(raw: String) -> Result<String, ApiError> {
    if raw.trim().is_empty() || raw.chars().count() > SHORT_TEXT {
        return Err(ApiError::bad_request(
            codes::INVALID_DEVICE_ID,
            format!("deviceId: must be 1 to {SHORT_TEXT} characters"),
        ));
    }
    Ok(raw)
}

/// The answer when no license has the key.
pub fn license_not_found(key: &LicenseKey) -> ApiError {
    ApiError::not_found(
        codes::LICENSE_NOT_FOUND,
        format!("no license with key {key}"),
    )
}

/// The verdict on a license, plus the reason when it is not valid. Borrows the license's text
/// fields (the data plane answers from its store without copying them); [`Self::into_owned`]
/// detaches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyAnswer<'a> {
    pub valid: bool,
    pub status: EffectiveStatus,
    /// Why the license is not valid (a code such as `license_expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'static, str>>,
    pub license_key: LicenseKey,
    pub product_id: Uuid,
    pub edition: Option<Cow<'a, str>>,
    pub features: Cow<'a, crate::json::CompactJson>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_activations: Option<i32>,
    pub current_activations: usize,
}

impl<'a> VerifyAnswer<'a> {
    /// Evaluates `license` for `check` and describes the result.
    pub fn new(license: &'a License, check: &Check<'_>) -> Self {
        let verdict = evaluate(license, check);
        VerifyAnswer {
            valid: verdict.is_ok(),
            status: license.effective_status(check.now),
            reason: verdict.err().map(|denial| Cow::Borrowed(denial.code())),
            license_key: license.key.clone(),
            product_id: license.product_id,
            edition: license.edition.as_deref().map(Cow::Borrowed),
            features: Cow::Borrowed(&license.features),
            starts_at: license.starts_at,
            expires_at: license.expires_at,
            max_activations: license.max_activations,
            current_activations: license.current_activations(),
        }
    }

    /// The same answer, holding its own copies of the text fields.
    pub fn into_owned(self) -> VerifyAnswer<'static> {
        VerifyAnswer {
            edition: self.edition.map(|edition| Cow::Owned(edition.into_owned())),
            features: Cow::Owned(self.features.into_owned()),
            ..self
        }
    }
}

/// A successful activation: the verdict plus the device's seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateAnswer<'a> {
    #[serde(flatten)]
    pub license: VerifyAnswer<'a>,
    /// False when this call took a new seat, true when the device already held one.
    pub already_activated: bool,
    pub activation: ActivationAnswer,
}

impl ValidateAnswer<'static> {
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
            license: VerifyAnswer::new(&granted.license, &check).into_owned(),
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
