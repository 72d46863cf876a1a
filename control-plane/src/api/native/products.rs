//! `/api/products`: create, list, get, update, delete.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use license_shared::{ApiError, AuthorizationMethod, KeyPrefix, Product, codes};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::{ApiJson, ApiQuery};
use crate::api::common::fields::{self, SHORT_TEXT, nullable};
use crate::api::common::pagination::{self, PageQuery};
use crate::db::DeleteOutcome;
use crate::db::products::{self as store, NewProduct, ProductChanges};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/products", get(list).post(create))
        .route("/api/products/{id}", get(show).put(update).delete(remove))
}

/// A product as the native API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProductView {
    id: Uuid,
    code: String,
    name: String,
    authorization_method: AuthorizationMethod,
    key_prefix: Option<String>,
    metadata: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Product> for ProductView {
    fn from(product: Product) -> Self {
        ProductView {
            id: product.id,
            code: product.code,
            name: product.name,
            authorization_method: product.authorization_method,
            key_prefix: product.key_prefix.map(|prefix| prefix.as_str().to_owned()),
            metadata: product.metadata,
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateProduct {
    code: String,
    name: String,
    authorization_method: Option<String>,
    key_prefix: Option<String>,
    metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateProduct {
    code: Option<String>,
    name: Option<String>,
    authorization_method: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    key_prefix: Option<Option<String>>,
    metadata: Option<serde_json::Value>,
}

/// A product code: 1 to 64 lower-case letters, digits, `-`, `_` or `.`.
fn code(raw: String) -> Result<String, ApiError> {
    let valid = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if valid {
        Ok(raw)
    } else {
        Err(ApiError::bad_request(
            codes::INVALID_FIELD,
            "code: use 1 to 64 lower-case letters, digits, '-', '_' or '.'",
        ))
    }
}

fn key_prefix(raw: &str) -> Result<KeyPrefix, ApiError> {
    KeyPrefix::parse(raw).map_err(|error| {
        ApiError::bad_request(codes::INVALID_KEY_PREFIX, format!("keyPrefix: {error}"))
    })
}

fn authorization_method(raw: &str) -> Result<AuthorizationMethod, ApiError> {
    fields::variant(
        "authorizationMethod",
        raw,
        codes::INVALID_AUTHORIZATION_METHOD,
    )
}

/// The product `id` in a path, or the 404 that says it does not exist.
pub(super) fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found(codes::PRODUCT_NOT_FOUND, format!("no product with id {id}"))
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateProduct>,
) -> AppResult<Response> {
    let new = NewProduct {
        code: code(body.code)?,
        name: fields::required_text("name", body.name, SHORT_TEXT)?,
        authorization_method: body
            .authorization_method
            .as_deref()
            .map(authorization_method)
            .transpose()?
            .unwrap_or(AuthorizationMethod::LicenseKey),
        key_prefix: body.key_prefix.as_deref().map(key_prefix).transpose()?,
        metadata: body
            .metadata
            .map(fields::metadata)
            .transpose()?
            .unwrap_or_else(|| serde_json::json!({})),
    };
    let product = store::insert(&state.db, new).await?;
    Ok((StatusCode::CREATED, Json(ProductView::from(product))).into_response())
}

async fn list(
    State(state): State<AppState>,
    uri: Uri,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> AppResult<Response> {
    let page = pagination::page(query.page, query.per_page)?;
    let (products, total) = store::list(&state.db, page).await?;
    let views: Vec<ProductView> = products.into_iter().map(ProductView::from).collect();
    Ok(pagination::respond(&uri, page, total, views))
}

async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<ProductView>> {
    let id = fields::uuid("id", &id)?;
    let product = store::get(&state.db, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(product.into()))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateProduct>,
) -> AppResult<Json<ProductView>> {
    let id = fields::uuid("id", &id)?;
    let changes = ProductChanges {
        code: body.code.map(code).transpose()?,
        name: body
            .name
            .map(|name| fields::required_text("name", name, SHORT_TEXT))
            .transpose()?,
        authorization_method: body
            .authorization_method
            .as_deref()
            .map(authorization_method)
            .transpose()?,
        key_prefix: body
            .key_prefix
            .map(|prefix| prefix.as_deref().map(key_prefix).transpose())
            .transpose()?,
        metadata: body.metadata.map(fields::metadata).transpose()?,
    };
    let product = store::update(&state.db, id, changes)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(product.into()))
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<StatusCode> {
    let id = fields::uuid("id", &id)?;
    match store::delete(&state.db, id).await? {
        DeleteOutcome::Deleted => Ok(StatusCode::NO_CONTENT),
        DeleteOutcome::NotFound => Err(not_found(id).into()),
        DeleteOutcome::InUse(count) => Err(ApiError::conflict(
            codes::PRODUCT_IN_USE,
            format!("{count} license(s) still use this product; delete them first"),
        )
        .into()),
    }
}
