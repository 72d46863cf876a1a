//! The public, unauthenticated client endpoints, answered from the database (the source of
//! truth the data planes forward activations to): `POST /api/licenses/verify` and
//! `POST /api/licenses/validate` (verify and activate this device).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use license_shared::protocol::AuthorityError;
use license_shared::public_api::{
    ValidateAnswer, ValidateRequest, VerifyAnswer, VerifyRequest, license_not_found,
};
use license_shared::{ApiError, Check};

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::ApiJson;
use crate::authority;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/licenses/verify", post(verify))
        .route("/api/licenses/validate", post(validate))
}

async fn verify(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> AppResult<Response> {
    let query = request.parse()?;
    let record = crate::db::licenses::get_by_key(&state.db, &query.license_key)
        .await?
        .ok_or_else(|| license_not_found(&query.license_key))?;
    let check = Check {
        now: Utc::now(),
        product_id: query.product_id,
        device_id: query.device_id.as_deref(),
    };
    // Encoded here, while the answer borrows from the record: nothing copied.
    Ok(Json(VerifyAnswer::new(&record.license, &check)).into_response())
}

async fn validate(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ValidateRequest>,
) -> AppResult<Json<ValidateAnswer<'static>>> {
    let request = request.parse()?;
    let product_id = request.product_id;
    let now = Utc::now();
    let key = request.license_key.clone();
    let granted = authority::activate(&state.db, request, now, None)
        .await
        .map_err(|error| match error {
            AuthorityError::LicenseNotFound => license_not_found(&key),
            other => ApiError::from(other),
        })?;
    Ok(Json(ValidateAnswer::granted(granted, product_id, now)))
}
