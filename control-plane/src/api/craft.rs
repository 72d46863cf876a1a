//! Craft's plugin licenses API (seed 001) on the control plane: `GET /v1/plugin-licenses`
//! (`{total, totalPages, licenses}`, `page` / `perPage`), `POST /v1/plugin-licenses`, and
//! `GET /v1/plugin-licenses/{key}`, behind HTTP basic auth (`user:token`). A plugin is a product
//! (by code), an email a customer (created when new); the licenses are the same ones every
//! other dialect manages. Errors keep the native `{status, code, message}` shape.

use std::collections::HashMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Months, NaiveDate, SecondsFormat, Utc};
use license_shared::{ApiError, LicenseStatus, LicenseType, codes};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::AppState;
use super::error::AppResult;
use super::extract::{ApiJson, ApiQuery};
use super::fields::{self, LONG_TEXT, SHORT_TEXT};
use super::pagination::{PageQuery, page};
use crate::db::customers::{self, CustomerFields};
use crate::db::licenses::{
    self as store, InsertOutcome, LicenseFields, LicenseFilter, LicenseRecord,
};
use crate::db::products;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/plugin-licenses", get(list).post(create))
        .route("/v1/plugin-licenses/{key}", get(show))
}

/// A license as Craft shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CraftLicense {
    id: i64,
    plugin_id: Option<i64>,
    edition_id: Option<i64>,
    owner_id: Option<i64>,
    cms_license_id: Option<i64>,
    plugin: String,
    edition: Option<String>,
    expirable: bool,
    expired: bool,
    auto_renew: bool,
    email: String,
    key: String,
    notes: Option<String>,
    last_version: Option<String>,
    last_allowed_version: Option<String>,
    last_activity_on: Option<String>,
    last_renewed_on: Option<String>,
    expires_on: Option<String>,
    date_created: Option<String>,
    date_updated: Option<String>,
    uid: Option<Uuid>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing {
    total: i64,
    total_pages: i64,
    licenses: Vec<CraftLicense>,
}

#[derive(Debug, Serialize)]
struct One {
    license: CraftLicense,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatePluginLicense {
    plugin: String,
    edition: String,
    email: String,
    #[serde(default)]
    expirable: bool,
    expires_on: Option<String>,
    notes: Option<String>,
    private_notes: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Json<Listing>> {
    let page = page(query.page, query.per_page)?;
    let (records, total) = store::list(&state.db, LicenseFilter::default(), page).await?;
    let per_page = i64::from(page.per_page);
    Ok(Json(Listing {
        total,
        total_pages: (total + per_page - 1) / per_page,
        licenses: views(&state, records).await?,
    }))
}

async fn show(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
) -> AppResult<Json<One>> {
    // A segment that is not UTF-8 once percent-decoded is no key either (not axum's plain text).
    let key = match key {
        Ok(Path(key)) => fields::license_key(&key)?,
        Err(_) => {
            return Err(ApiError::bad_request(
                codes::INVALID_LICENSE_KEY,
                "the license key in the path is not valid UTF-8",
            )
            .into());
        }
    };
    let record = store::get_by_key(&state.db, &key).await?.ok_or_else(|| {
        ApiError::not_found(
            codes::LICENSE_NOT_FOUND,
            format!("no license with key {key}"),
        )
    })?;
    let license = views(&state, vec![record])
        .await?
        .pop()
        .ok_or_else(ApiError::internal)?;
    Ok(Json(One { license }))
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreatePluginLicense>,
) -> AppResult<Response> {
    let plugin = fields::required_text("plugin", body.plugin, SHORT_TEXT)?;
    let edition = fields::required_text("edition", body.edition, SHORT_TEXT)?;
    let email = fields::email(body.email)?;
    let notes = fields::optional_text("notes", body.notes, LONG_TEXT)?;
    let private_notes = fields::optional_text("privateNotes", body.private_notes, LONG_TEXT)?;
    let expires_at = match (body.expirable, body.expires_on) {
        (false, None) => None,
        (false, Some(_)) => {
            return Err(ApiError::bad_request(
                codes::INVALID_FIELD,
                "expiresOn: only an expirable license has an expiration date",
            )
            .into());
        }
        (true, Some(raw)) => Some(expiration(&raw)?),
        (true, None) => Some(
            Utc::now()
                .checked_add_months(Months::new(12))
                .ok_or_else(ApiError::internal)?,
        ),
    };
    let product = products::get_by_code(&state.db, &plugin)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                codes::UNKNOWN_PRODUCT,
                format!("no plugin with handle {plugin:?}"),
            )
        })?;
    let customer = match customers::get_by_email(&state.db, &email).await? {
        Some(customer) => customer,
        None => {
            let new = CustomerFields {
                email: email.clone(),
                first_name: None,
                last_name: None,
                company_name: None,
                reference: None,
                metadata: Value::Object(Map::new()),
            };
            match customers::insert(&state.db, new).await {
                Ok(customer) => customer,
                // Created meanwhile by a concurrent request.
                Err(error) if crate::db::violated_constraint(&error).is_some() => {
                    customers::get_by_email(&state.db, &email)
                        .await?
                        .ok_or_else(ApiError::internal)?
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    let fields = LicenseFields {
        product_id: product.id,
        customer_id: customer.id,
        edition: Some(edition),
        status: LicenseStatus::Active,
        license_type: if expires_at.is_some() {
            LicenseType::TimeLimited
        } else {
            LicenseType::Perpetual
        },
        max_activations: None,
        features: Map::new(),
        starts_at: None,
        expires_at,
        notes,
        private_notes,
        metadata: Value::Object(Map::new()),
    };
    let record = match store::insert(&state.db, fields).await? {
        InsertOutcome::Created(record) => *record,
        InsertOutcome::UnknownProduct => {
            return Err(ApiError::bad_request(
                codes::UNKNOWN_PRODUCT,
                "the plugin was just deleted",
            )
            .into());
        }
        InsertOutcome::UnknownCustomer => {
            return Err(ApiError::bad_request(
                codes::UNKNOWN_CUSTOMER,
                "the customer was just deleted",
            )
            .into());
        }
    };
    let license = views(&state, vec![record])
        .await?
        .pop()
        .ok_or_else(ApiError::internal)?;
    Ok((StatusCode::CREATED, Json(One { license })).into_response())
}

/// `expiresOn`: a date (`2027-01-31`, valid through that day) or an RFC 3339 timestamp; in the
/// future.
fn expiration(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let at = DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(23, 59, 59))
                .map(|at| at.and_utc())
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                codes::INVALID_DATE,
                format!("expiresOn: {raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 timestamp"),
            )
        })?;
    if at <= Utc::now() {
        return Err(ApiError::bad_request(
            codes::INVALID_DATE,
            "expiresOn: must be in the future",
        ));
    }
    Ok(at)
}

fn date(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

async fn views(state: &AppState, records: Vec<LicenseRecord>) -> AppResult<Vec<CraftLicense>> {
    let ids: Vec<Uuid> = records.iter().map(|r| r.license.id).collect();
    let product_ids: Vec<Uuid> = records.iter().map(|r| r.license.product_id).collect();
    let customer_ids: Vec<Uuid> = records.iter().map(|r| r.license.customer_id).collect();
    let codes: HashMap<Uuid, String> = products::fetch_many(&state.db, &product_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p.code))
        .collect();
    let numbers = products::numbers(&state.db, &product_ids).await?;
    let emails: HashMap<Uuid, String> = customers::fetch_many(&state.db, &customer_ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c.email))
        .collect();
    let activity = crate::db::usage::last_validated(&state.db, &ids).await?;
    let now = Utc::now();
    Ok(records
        .into_iter()
        .map(|record| {
            let license = record.license;
            CraftLicense {
                id: license.number,
                plugin_id: numbers.get(&license.product_id).copied(),
                edition_id: None,
                owner_id: None,
                cms_license_id: None,
                plugin: codes.get(&license.product_id).cloned().unwrap_or_default(),
                edition: license.edition.clone(),
                expirable: license.expires_at.is_some(),
                expired: license.is_expired(now),
                auto_renew: license.license_type == LicenseType::Subscription,
                email: emails
                    .get(&license.customer_id)
                    .cloned()
                    .unwrap_or_default(),
                key: license.key.to_string(),
                notes: license.notes.clone(),
                last_version: None,
                last_allowed_version: None,
                last_activity_on: activity.get(&license.id).copied().map(date),
                last_renewed_on: None,
                expires_on: license.expires_at.map(date),
                date_created: Some(date(license.created_at)),
                date_updated: Some(date(license.updated_at)),
                uid: Some(license.id),
            }
        })
        .collect())
}
