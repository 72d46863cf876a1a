//! `/api/licenses/{key}/activations`: the devices on a license, and freeing a seat.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use license_shared::{ApiError, codes};
use serde::Deserialize;

use super::licenses;
use crate::api::AppState;
use crate::api::common::error::{AppError, AppResult};
use crate::api::common::extract::ApiQuery;
use crate::api::common::fields;
use crate::db::activations::{self as store, Activation, DeactivationOutcome};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/licenses/{key}/activations", get(list))
        .route(
            "/api/licenses/{key}/activations/{device_id}",
            delete(deactivate),
        )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    /// Also list devices that were deactivated.
    #[serde(default)]
    include_inactive: bool,
}

async fn list(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<Json<Vec<Activation>>> {
    let key = fields::license_key(&key)?;
    let activations = store::list(&state.db, &key, query.include_inactive)
        .await?
        .ok_or_else(|| licenses::not_found(&key))?;
    Ok(Json(activations))
}

async fn deactivate(
    State(state): State<AppState>,
    Path((key, device_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let key = fields::license_key(&key)?;
    // An admin's request has no deadline: it is decided however long it takes.
    match store::deactivate(&state.db, &key, &device_id, None).await? {
        DeactivationOutcome::Deactivated => Ok(StatusCode::NO_CONTENT),
        DeactivationOutcome::LicenseNotFound => Err(licenses::not_found(&key).into()),
        DeactivationOutcome::DeviceNotActive => Err(ApiError::not_found(
            codes::ACTIVATION_NOT_FOUND,
            "this device is not active on the license",
        )
        .into()),
        DeactivationOutcome::DeadlinePassed => Err(AppError::Unexpected(anyhow::anyhow!(
            "a deactivation without a deadline reported its deadline passed"
        ))),
    }
}
