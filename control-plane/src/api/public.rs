//! The public, unauthenticated client endpoints, answered from the database (the source of
//! truth the data planes forward activations to): `POST /api/licenses/verify` and
//! `POST /api/licenses/validate` (verify and activate this device).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use license_shared::{ApiError, Check, EffectiveStatus, License, LicenseKey, codes, evaluate};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::error::AppResult;
use super::extract::ApiJson;
use super::fields::{self, SHORT_TEXT};
use super::licenses;
use crate::db::activations::{self, ActivationOutcome, DeviceInfo};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/licenses/verify", post(verify))
        .route("/api/licenses/validate", post(validate))
}

/// `POST /api/licenses/verify`. Unknown fields are ignored so that clients may send more.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    pub license_key: String,
    /// When given, the license must belong to this product.
    pub product_id: Option<String>,
    /// When given, this device must be activated on the license.
    pub device_id: Option<String>,
}

/// `POST /api/licenses/validate`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateRequest {
    pub license_key: String,
    pub device_id: String,
    pub device_name: Option<String>,
    pub product_id: Option<String>,
    /// Facts about the device (os, hostname, app version, …), a JSON object.
    pub client_facts: Option<serde_json::Value>,
}

/// The verdict on a license, in seed 003's shape plus the reason when it is not valid.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub valid: bool,
    pub status: EffectiveStatus,
    /// Why the license is not valid (a code such as `license_expired`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub license_key: LicenseKey,
    pub product_id: Uuid,
    pub edition: Option<String>,
    pub features: serde_json::Map<String, serde_json::Value>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_activations: Option<i32>,
    pub current_activations: usize,
}

impl VerifyResponse {
    pub fn new(license: &License, check: &Check<'_>) -> Self {
        let verdict = evaluate(license, check);
        VerifyResponse {
            valid: verdict.is_ok(),
            status: license.effective_status(check.now),
            reason: verdict.err().map(|denial| denial.code()),
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
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateResponse {
    #[serde(flatten)]
    pub license: VerifyResponse,
    /// False when this call took a new seat, true when the device already held one.
    pub already_activated: bool,
    pub activation: ActivationView,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationView {
    pub device_id: String,
    pub device_name: Option<String>,
    pub activated_at: DateTime<Utc>,
}

fn device_id(raw: String) -> Result<String, ApiError> {
    if raw.trim().is_empty() || raw.chars().count() > SHORT_TEXT {
        return Err(ApiError::bad_request(
            codes::INVALID_DEVICE_ID,
            format!("deviceId: must be 1 to {SHORT_TEXT} characters"),
        ));
    }
    Ok(raw)
}

async fn verify(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> AppResult<Json<VerifyResponse>> {
    let key = fields::license_key(&request.license_key)?;
    let product_id = request
        .product_id
        .as_deref()
        .map(|raw| fields::uuid("productId", raw))
        .transpose()?;
    let device_id = request.device_id.map(device_id).transpose()?;
    let record = crate::db::licenses::get_by_key(&state.db, &key)
        .await?
        .ok_or_else(|| licenses::not_found(&key))?;
    let check = Check {
        now: Utc::now(),
        product_id,
        device_id: device_id.as_deref(),
    };
    Ok(Json(VerifyResponse::new(&record.license, &check)))
}

async fn validate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ValidateRequest>,
) -> AppResult<Json<ValidateResponse>> {
    let key = fields::license_key(&request.license_key)?;
    let product_id = request
        .product_id
        .as_deref()
        .map(|raw| fields::uuid("productId", raw))
        .transpose()?;
    let device = DeviceInfo {
        device_id: device_id(request.device_id)?,
        device_name: fields::optional_text("deviceName", request.device_name, SHORT_TEXT)?,
        client_facts: request
            .client_facts
            .map(|facts| fields::object("clientFacts", facts, codes::INVALID_FIELD))
            .transpose()?
            .map_or_else(|| serde_json::json!({}), serde_json::Value::Object),
    };
    let now = Utc::now();
    let outcome = activations::activate(&state.db, &key, product_id, device, now).await?;
    let (record, activation, already_activated) = match outcome {
        ActivationOutcome::Activated {
            license,
            activation,
        } => (license, activation, false),
        ActivationOutcome::AlreadyActive {
            license,
            activation,
        } => (license, activation, true),
        ActivationOutcome::LicenseNotFound => return Err(licenses::not_found(&key).into()),
        ActivationOutcome::Denied(denial) => return Err(ApiError::denied(denial).into()),
        ActivationOutcome::LimitReached { max_activations } => {
            return Err(ApiError::forbidden(
                codes::ACTIVATION_LIMIT_REACHED,
                format!(
                    "all {max_activations} activation(s) of this license are in use; \
                     deactivate a device first"
                ),
            )
            .into());
        }
    };
    let check = Check {
        now,
        product_id,
        device_id: Some(&activation.device_id),
    };
    Ok(Json(ValidateResponse {
        license: VerifyResponse::new(&record.license, &check),
        already_activated,
        activation: ActivationView {
            device_id: activation.device_id,
            device_name: activation.device_name,
            activated_at: activation.activated_at,
        },
    }))
}
