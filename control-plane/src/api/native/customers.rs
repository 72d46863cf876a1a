//! `/api/customers`: create, list, get, update, delete.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use license_shared::{ApiError, Customer, codes};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::{ApiJson, ApiQuery};
use crate::api::common::fields::{self, SHORT_TEXT, nullable};
use crate::api::common::pagination::{self, PageQuery};
use crate::db::DeleteOutcome;
use crate::db::customers::{self as store, CustomerChanges, CustomerFields};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/customers", get(list).post(create))
        .route("/api/customers/{id}", get(show).put(update).delete(remove))
}

/// A customer as the native API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CustomerView {
    id: Uuid,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    company_name: Option<String>,
    reference: Option<String>,
    metadata: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Customer> for CustomerView {
    fn from(customer: Customer) -> Self {
        CustomerView {
            id: customer.id,
            email: customer.email,
            first_name: customer.first_name,
            last_name: customer.last_name,
            company_name: customer.company_name,
            reference: customer.reference,
            metadata: customer.metadata,
            created_at: customer.created_at,
            updated_at: customer.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateCustomer {
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    company_name: Option<String>,
    reference: Option<String>,
    metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateCustomer {
    email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    company_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    reference: Option<Option<String>>,
    metadata: Option<serde_json::Value>,
}

/// Validates an optional short text that may be cleared with null.
fn clearable(field: &str, raw: Option<Option<String>>) -> Result<Option<Option<String>>, ApiError> {
    raw.map(|value| fields::optional_text(field, value, SHORT_TEXT))
        .transpose()
}

pub(super) fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found(
        codes::CUSTOMER_NOT_FOUND,
        format!("no customer with id {id}"),
    )
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateCustomer>,
) -> AppResult<Response> {
    let customer = CustomerFields {
        email: fields::email(body.email)?,
        first_name: fields::optional_text("firstName", body.first_name, SHORT_TEXT)?,
        last_name: fields::optional_text("lastName", body.last_name, SHORT_TEXT)?,
        company_name: fields::optional_text("companyName", body.company_name, SHORT_TEXT)?,
        reference: fields::optional_text("reference", body.reference, SHORT_TEXT)?,
        metadata: body
            .metadata
            .map(fields::metadata)
            .transpose()?
            .unwrap_or_else(|| serde_json::json!({})),
    };
    let customer = store::insert(&state.db, customer).await?;
    Ok((StatusCode::CREATED, Json(CustomerView::from(customer))).into_response())
}

async fn list(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Response> {
    let page = pagination::page(query.page, query.per_page)?;
    let (customers, total) = store::list(&state.db, page).await?;
    let views: Vec<CustomerView> = customers.into_iter().map(CustomerView::from).collect();
    Ok(pagination::respond(&uri, page, total, views))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<CustomerView>> {
    let id = fields::uuid("id", &id)?;
    let customer = store::get(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(customer.into()))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateCustomer>,
) -> AppResult<Json<CustomerView>> {
    let id = fields::uuid("id", &id)?;
    let changes = CustomerChanges {
        email: body.email.map(fields::email).transpose()?,
        first_name: clearable("firstName", body.first_name)?,
        last_name: clearable("lastName", body.last_name)?,
        company_name: clearable("companyName", body.company_name)?,
        reference: clearable("reference", body.reference)?,
        metadata: body.metadata.map(fields::metadata).transpose()?,
    };
    let customer = store::update(&state.db, id, changes)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(customer.into()))
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<StatusCode> {
    let id = fields::uuid("id", &id)?;
    match store::delete(&state.db, id).await? {
        DeleteOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
        DeleteOutcome::NotFound => Err(not_found(id).into()),
        DeleteOutcome::InUse(count) => Err(ApiError::conflict(
            codes::CUSTOMER_IN_USE,
            format!("this customer still owns {count} license(s); delete them first"),
        )
        .into()),
    }
}
