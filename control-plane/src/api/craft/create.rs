//! `POST /v1/plugin-licenses`: a license for a plugin (an existing product, by code) and an
//! email (the customer, created when new, in the license's own transaction).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Months, NaiveDate, Utc};
use license_shared::{ApiError, LicenseStatus, LicenseType, codes};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::One;
use super::view::views;
use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::ApiJson;
use crate::api::common::fields::{self, LONG_TEXT, SHORT_TEXT};
use crate::db::customers::CustomerFields;
use crate::db::licenses::{self as store, Identity, InsertOutcome, LicenseFields, NamedOwners};
use crate::db::products;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreatePluginLicense {
    plugin: String,
    edition: String,
    email: String,
    #[serde(default)]
    expirable: bool,
    expires_on: Option<String>,
    notes: Option<String>,
    private_notes: Option<String>,
}

pub(super) async fn create(
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
    // The customer is found or created in the license's transaction: a refused license
    // leaves no customer behind.
    let owners = NamedOwners {
        product: None,
        customer: Some(CustomerFields {
            email,
            first_name: None,
            last_name: None,
            company_name: None,
            reference: None,
            metadata: Value::Object(Map::new()),
        }),
    };
    let fields = LicenseFields {
        product_id: product.id,
        // A placeholder: `owners.customer` replaces it.
        customer_id: Uuid::nil(),
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
    let record = match store::insert_as(&state.db, fields, &owners, Identity::default()).await? {
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
