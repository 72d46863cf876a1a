//! `/api/licenses`: list (filtered, paginated), create (key generated), get, update and delete
//! by key, in seed 003's camelCase shapes.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use license_shared::{ApiError, EffectiveStatus, LicenseKey, LicenseStatus, LicenseType, codes};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{customers, products};
use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::{ApiJson, ApiQuery};
use crate::api::common::fields::{self, LONG_TEXT, SHORT_TEXT, nullable};
use crate::api::common::pagination;
use crate::db::licenses::{
    self as store, InsertOutcome, LicenseChanges, LicenseFields, LicenseFilter, LicenseRecord,
};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/licenses", get(list).post(create))
        .route("/api/licenses/{key}", get(show).put(update).delete(remove))
}

/// A license as the native admin API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LicenseView {
    id: Uuid,
    number: i64,
    license_key: LicenseKey,
    customer_id: Uuid,
    product_id: Uuid,
    edition: Option<String>,
    /// Effective status: `expired` once `expiresAt` has passed.
    status: EffectiveStatus,
    license_type: LicenseType,
    max_activations: Option<i32>,
    current_activations: usize,
    features: license_shared::CompactJson,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    notes: Option<String>,
    private_notes: Option<String>,
    metadata: license_shared::CompactJson,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    revision: i64,
}

impl LicenseView {
    pub(super) fn new(record: LicenseRecord, now: DateTime<Utc>) -> Self {
        let license = record.license;
        LicenseView {
            status: license.effective_status(now),
            current_activations: license.current_activations(),
            id: license.id,
            number: license.number,
            license_key: license.key,
            customer_id: license.customer_id,
            product_id: license.product_id,
            edition: license.edition,
            license_type: license.license_type,
            max_activations: license.max_activations,
            features: license.features,
            starts_at: license.starts_at,
            expires_at: license.expires_at,
            notes: license.notes,
            private_notes: record.private_notes,
            metadata: license.metadata,
            created_at: license.created_at,
            updated_at: license.updated_at,
            revision: license.revision,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateLicense {
    customer_id: String,
    product_id: String,
    max_activations: Option<i64>,
    features: Option<serde_json::Value>,
    expires_at: Option<String>,
    starts_at: Option<String>,
    edition: Option<String>,
    license_type: Option<String>,
    status: Option<String>,
    notes: Option<String>,
    private_notes: Option<String>,
    metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateLicense {
    status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    max_activations: Option<Option<i64>>,
    features: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "nullable")]
    expires_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    starts_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    edition: Option<Option<String>>,
    license_type: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    private_notes: Option<Option<String>>,
    metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    status: Option<String>,
    product_id: Option<String>,
    customer_id: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

fn status(raw: &str) -> Result<LicenseStatus, ApiError> {
    if raw == EffectiveStatus::Expired.as_str() {
        return Err(ApiError::bad_request(
            codes::INVALID_STATUS,
            "status: `expired` follows from expiresAt; set expiresAt instead",
        ));
    }
    fields::variant("status", raw, codes::INVALID_STATUS)
}

fn license_type(raw: &str) -> Result<LicenseType, ApiError> {
    fields::variant("licenseType", raw, codes::INVALID_LICENSE_TYPE)
}

fn features(
    value: serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    fields::object("features", value, codes::INVALID_FEATURES)
}

fn date_range(
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    match (starts_at, expires_at) {
        (Some(starts_at), Some(expires_at)) if starts_at >= expires_at => {
            Err(ApiError::bad_request(
                codes::INVALID_DATE_RANGE,
                "startsAt must be before expiresAt",
            ))
        }
        _ => Ok(()),
    }
}

pub(super) fn not_found(key: &LicenseKey) -> ApiError {
    license_shared::public_api::license_not_found(key)
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateLicense>,
) -> AppResult<Response> {
    let starts_at = fields::optional_timestamp("startsAt", body.starts_at.as_deref())?;
    let expires_at = fields::optional_timestamp("expiresAt", body.expires_at.as_deref())?;
    date_range(starts_at, expires_at)?;
    let default_type = if expires_at.is_some() {
        LicenseType::TimeLimited
    } else {
        LicenseType::Perpetual
    };
    let license = LicenseFields {
        customer_id: fields::uuid("customerId", &body.customer_id)?,
        product_id: fields::uuid("productId", &body.product_id)?,
        edition: fields::optional_text("edition", body.edition, SHORT_TEXT)?,
        status: body
            .status
            .as_deref()
            .map(status)
            .transpose()?
            .unwrap_or(LicenseStatus::Active),
        license_type: body
            .license_type
            .as_deref()
            .map(license_type)
            .transpose()?
            .unwrap_or(default_type),
        max_activations: body
            .max_activations
            .map(fields::max_activations)
            .transpose()?,
        features: body.features.map(features).transpose()?.unwrap_or_default(),
        starts_at,
        expires_at,
        notes: fields::optional_text("notes", body.notes, LONG_TEXT)?,
        private_notes: fields::optional_text("privateNotes", body.private_notes, LONG_TEXT)?,
        metadata: body
            .metadata
            .map(fields::metadata)
            .transpose()?
            .unwrap_or_else(|| serde_json::json!({})),
    };
    let (product_id, customer_id) = (license.product_id, license.customer_id);
    match store::insert(&state.db, license).await? {
        InsertOutcome::Created(record) => Ok((
            StatusCode::CREATED,
            Json(LicenseView::new(*record, Utc::now())),
        )
            .into_response()),
        InsertOutcome::UnknownProduct => Err(ApiError::bad_request(
            codes::UNKNOWN_PRODUCT,
            format!("productId: {}", products::not_found(product_id).message),
        )
        .into()),
        InsertOutcome::UnknownCustomer => Err(ApiError::bad_request(
            codes::UNKNOWN_CUSTOMER,
            format!("customerId: {}", customers::not_found(customer_id).message),
        )
        .into()),
    }
}

async fn list(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<Response> {
    let page = pagination::page(query.page, query.per_page)?;
    let filter = LicenseFilter {
        status: query
            .status
            .as_deref()
            .map(|raw| fields::variant("status", raw, codes::INVALID_STATUS))
            .transpose()?,
        product_id: query
            .product_id
            .as_deref()
            .map(|raw| fields::uuid("productId", raw))
            .transpose()?,
        customer_id: query
            .customer_id
            .as_deref()
            .map(|raw| fields::uuid("customerId", raw))
            .transpose()?,
    };
    let (records, total) = store::list(&state.db, filter, page).await?;
    let now = Utc::now();
    let views: Vec<LicenseView> = records
        .into_iter()
        .map(|record| LicenseView::new(record, now))
        .collect();
    Ok(pagination::respond(&uri, page, total, views))
}

async fn show(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> AppResult<Json<LicenseView>> {
    let key = fields::license_key(&key)?;
    let record = store::get_by_key(&state.db, &key)
        .await?
        .ok_or_else(|| not_found(&key))?;
    Ok(Json(LicenseView::new(record, Utc::now())))
}

async fn update(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<UpdateLicense>,
) -> AppResult<Json<LicenseView>> {
    let key = fields::license_key(&key)?;
    let changes = LicenseChanges {
        status: body.status.as_deref().map(status).transpose()?,
        max_activations: body
            .max_activations
            .map(|max| max.map(fields::max_activations).transpose())
            .transpose()?,
        features: body.features.map(features).transpose()?,
        expires_at: body
            .expires_at
            .map(|raw| fields::optional_timestamp("expiresAt", raw.as_deref()))
            .transpose()?,
        starts_at: body
            .starts_at
            .map(|raw| fields::optional_timestamp("startsAt", raw.as_deref()))
            .transpose()?,
        edition: body
            .edition
            .map(|raw| fields::optional_text("edition", raw, SHORT_TEXT))
            .transpose()?,
        license_type: body.license_type.as_deref().map(license_type).transpose()?,
        notes: body
            .notes
            .map(|raw| fields::optional_text("notes", raw, LONG_TEXT))
            .transpose()?,
        private_notes: body
            .private_notes
            .map(|raw| fields::optional_text("privateNotes", raw, LONG_TEXT))
            .transpose()?,
        metadata: body.metadata.map(fields::metadata).transpose()?,
    };
    if changes.is_empty() {
        return Err(ApiError::bad_request(
            codes::EMPTY_UPDATE,
            "the body changes nothing; send at least one field",
        )
        .into());
    }
    let record = store::update(&state.db, &key, changes)
        .await?
        .ok_or_else(|| not_found(&key))?;
    Ok(Json(LicenseView::new(record, Utc::now())))
}

async fn remove(State(state): State<AppState>, Path(key): Path<String>) -> AppResult<StatusCode> {
    let key = fields::license_key(&key)?;
    if store::delete(&state.db, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&key).into())
    }
}
