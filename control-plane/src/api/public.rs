//! The public, unauthenticated client endpoints, answered from the database (the source of
//! truth the data planes forward activations to): `POST /api/licenses/verify` and
//! `POST /api/licenses/validate` (verify and activate this device).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use license_shared::answers::{ValidateAnswer, VerifyAnswer};
use license_shared::protocol::ActivationRequest;
use license_shared::{ApiError, Check, codes};
use serde::Deserialize;

use super::AppState;
use super::error::AppResult;
use super::extract::ApiJson;
use super::fields::{self, SHORT_TEXT};
use super::licenses;
use crate::authority;

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
) -> AppResult<Json<VerifyAnswer>> {
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
    Ok(Json(VerifyAnswer::new(&record.license, &check)))
}

async fn validate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ValidateRequest>,
) -> AppResult<Json<ValidateAnswer>> {
    let key = fields::license_key(&request.license_key)?;
    let product_id = request
        .product_id
        .as_deref()
        .map(|raw| fields::uuid("productId", raw))
        .transpose()?;
    let request = ActivationRequest {
        license_key: key,
        product_id,
        device_id: device_id(request.device_id)?,
        device_name: fields::optional_text("deviceName", request.device_name, SHORT_TEXT)?,
        client_facts: request
            .client_facts
            .map(|facts| fields::object("clientFacts", facts, codes::INVALID_FIELD))
            .transpose()?
            .map_or_else(|| serde_json::json!({}), serde_json::Value::Object),
    };
    let now = Utc::now();
    let granted = authority::activate(&state.db, request, now).await?;
    Ok(Json(ValidateAnswer::granted(granted, product_id, now)))
}
