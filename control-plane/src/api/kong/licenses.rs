//! Kong's `/licenses`: list (`{"data": […], "next": …}`, `size` and an opaque `offset`), get,
//! create (`POST`, a new id), upsert (`PUT` with the id), replace (`PATCH`, existing only) and
//! delete. Each license is shown as `{"created_at", "id", "payload", "updated_at"}`: epoch
//! seconds, and `payload` the license's signed document as a JSON string.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use license_shared::document;
use license_shared::{ApiError, codes};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::import::{self, INVALID_LICENSE_DOCUMENT};
use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::ApiQuery;
use crate::db::licenses::{self as store, Identity, InsertOutcome, LicenseRecord, ReplaceOutcome};
use crate::db::{customers, products};

/// Largest page.
const MAX_SIZE: i64 = 1_000;
/// Page size when none is asked for (Kong's default).
const DEFAULT_SIZE: i64 = 100;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/licenses", get(list).post(create))
        .route("/licenses/", get(list).post(create))
        .route(
            "/licenses/{id}",
            get(show).put(upsert).patch(replace).delete(remove),
        )
}

/// A license as Kong shows it.
#[derive(Debug, Serialize)]
pub(super) struct KongLicense {
    created_at: i64,
    id: Uuid,
    payload: String,
    updated_at: i64,
}

#[derive(Debug, Serialize)]
struct Listing {
    data: Vec<KongLicense>,
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    size: Option<i64>,
    offset: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> AppResult<Json<Listing>> {
    let size = query.size.unwrap_or(DEFAULT_SIZE);
    if !(1..=MAX_SIZE).contains(&size) {
        return Err(ApiError::bad_request(
            codes::INVALID_QUERY,
            format!("size must be between 1 and {MAX_SIZE}"),
        )
        .into());
    }
    let after = match query.offset.as_deref() {
        None => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|after| *after >= 0)
            .ok_or_else(|| {
                ApiError::bad_request(codes::INVALID_QUERY, "offset is not one this API gave")
            })?,
    };
    // One more than asked tells whether there is a next page.
    let mut records = store::page_by_number(&state.db, after, size + 1).await?;
    let more = records.len() as i64 > size;
    records.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    let offset = more
        .then(|| {
            records
                .last()
                .map(|record| record.license.number.to_string())
        })
        .flatten();
    Ok(Json(Listing {
        data: views(&state, records).await?,
        next: offset
            .as_ref()
            .map(|offset| format!("/licenses?offset={offset}&size={size}")),
        offset,
    }))
}

async fn show(
    State(state): State<AppState>,
    LicenseId(id): LicenseId,
) -> AppResult<Json<KongLicense>> {
    let record = store::get_by_id(&state.db, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(one(&state, record).await?))
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    KongBody(body): KongBody,
) -> AppResult<Response> {
    let text = payload(&headers, &body)?;
    let imported = import::import(&state, &text).await?;
    let identity = Identity {
        id: None,
        key: imported.key,
        imported_document: imported.imported_document,
    };
    let record =
        inserted(store::insert_as(&state.db, imported.fields, &imported.owners, identity).await?)?;
    Ok((StatusCode::CREATED, Json(one(&state, record).await?)).into_response())
}

/// `PUT /licenses/{id}`: creates the license with this id, or replaces it.
async fn upsert(
    State(state): State<AppState>,
    LicenseId(id): LicenseId,
    headers: HeaderMap,
    KongBody(body): KongBody,
) -> AppResult<Json<KongLicense>> {
    let text = payload(&headers, &body)?;
    let imported = import::import(&state, &text).await?;
    let outcome = store::replace(
        &state.db,
        id,
        imported.fields.clone(),
        &imported.owners,
        imported.key.clone(),
        imported.imported_document.clone(),
    )
    .await?;
    let record = match replaced(outcome)? {
        Some(record) => record,
        None => {
            let identity = Identity {
                id: Some(id),
                key: imported.key,
                imported_document: imported.imported_document,
            };
            inserted(
                store::insert_as(&state.db, imported.fields, &imported.owners, identity).await?,
            )?
        }
    };
    Ok(Json(one(&state, record).await?))
}

/// `PATCH /licenses/{id}`: replaces an existing license's document.
async fn replace(
    State(state): State<AppState>,
    LicenseId(id): LicenseId,
    headers: HeaderMap,
    KongBody(body): KongBody,
) -> AppResult<Json<KongLicense>> {
    if store::get_by_id(&state.db, id).await?.is_none() {
        return Err(not_found().into());
    }
    let text = payload(&headers, &body)?;
    let imported = import::import(&state, &text).await?;
    let outcome = store::replace(
        &state.db,
        id,
        imported.fields,
        &imported.owners,
        imported.key,
        imported.imported_document,
    )
    .await?;
    let record = replaced(outcome)?.ok_or_else(not_found)?;
    Ok(Json(one(&state, record).await?))
}

async fn remove(State(state): State<AppState>, LicenseId(id): LicenseId) -> AppResult<StatusCode> {
    // Kong answers 204 whether or not the license existed.
    store::delete_by_id(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The raw request body. Over `--max-body-bytes` it is 413 `payload_too_large` in the error
/// shape (which [`super::error_shape`] turns into Kong's), not axum's plain-text rejection.
struct KongBody(Bytes);

impl<S: Send + Sync> FromRequest<S> for KongBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        license_shared::http::read_body(request, state, codes::MALFORMED_JSON)
            .await
            .map(KongBody)
    }
}

/// The `{id}` of `/licenses/{id}`: a UUID, or 400 `invalid_uuid` (also for a segment that is
/// not UTF-8 once percent-decoded, which axum's `Path` would answer in plain text).
struct LicenseId(Uuid);

impl<S: Send + Sync> FromRequestParts<S> for LicenseId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let invalid = |raw: &str| {
            ApiError::bad_request(codes::INVALID_UUID, format!("{raw:?} is not a valid UUID"))
        };
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| invalid(parts.uri.path().rsplit('/').next().unwrap_or_default()))?;
        Uuid::parse_str(&raw)
            .map(LicenseId)
            .map_err(|_| invalid(&raw))
    }
}

fn not_found() -> ApiError {
    ApiError::not_found(codes::NOT_FOUND, "Not found")
}

fn inserted(outcome: InsertOutcome) -> Result<LicenseRecord, ApiError> {
    match outcome {
        InsertOutcome::Created(record) => Ok(*record),
        InsertOutcome::UnknownProduct => Err(ApiError::bad_request(
            codes::UNKNOWN_PRODUCT,
            "the document's product no longer exists",
        )),
        InsertOutcome::UnknownCustomer => Err(ApiError::bad_request(
            codes::UNKNOWN_CUSTOMER,
            "the document's customer no longer exists",
        )),
    }
}

/// The replaced license, or `None` when there is no license with that id.
fn replaced(outcome: ReplaceOutcome) -> Result<Option<LicenseRecord>, ApiError> {
    match outcome {
        ReplaceOutcome::Replaced(record) => Ok(Some(*record)),
        ReplaceOutcome::NotFound => Ok(None),
        ReplaceOutcome::UnknownProduct => Err(ApiError::bad_request(
            codes::UNKNOWN_PRODUCT,
            "the document's product no longer exists",
        )),
        ReplaceOutcome::UnknownCustomer => Err(ApiError::bad_request(
            codes::UNKNOWN_CUSTOMER,
            "the document's customer no longer exists",
        )),
    }
}

/// The `payload` attribute of the request: JSON `{"payload": "…"}` or a form field, as Kong's
/// admin API takes either (`curl --data-urlencode payload@license.json`). The payload itself
/// may also be sent as a JSON object.
fn payload(headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    // `curl -d '{…}'` labels JSON as a form: a body that opens like JSON is JSON.
    let looks_like_json = body
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|byte| *byte == b'{');
    let form = !looks_like_json
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let missing = || {
        ApiError::bad_request(
            codes::MISSING_FIELD,
            "payload: required (the signed license document)",
        )
    };
    if form {
        let pairs: Vec<(String, String)> = axum::extract::Query::try_from_uri(
            &format!("/?{}", String::from_utf8_lossy(body))
                .parse()
                .map_err(|_| ApiError::bad_request(codes::MALFORMED_JSON, "malformed form body"))?,
        )
        .map(|axum::extract::Query(pairs)| pairs)
        .map_err(|_| ApiError::bad_request(codes::MALFORMED_JSON, "malformed form body"))?;
        return pairs
            .into_iter()
            .find(|(name, _)| name == "payload")
            .map(|(_, value)| value)
            .ok_or_else(missing);
    }
    let value: serde_json::Value = crate::api::common::extract::parse_json(body)?;
    match value.get("payload") {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(object @ serde_json::Value::Object(_)) => Ok(object.to_string()),
        Some(_) => Err(ApiError::bad_request(
            INVALID_LICENSE_DOCUMENT,
            "payload must be the license document, as a string",
        )),
        None => Err(missing()),
    }
}

async fn one(state: &AppState, record: LicenseRecord) -> AppResult<KongLicense> {
    let mut views = views(state, vec![record]).await?;
    views.pop().ok_or_else(|| {
        crate::api::common::error::AppError::Unexpected(anyhow::anyhow!(
            "views() made no Kong view of the one license it was given"
        ))
    })
}

/// Kong views of `records`, with their documents: imported ones verbatim, the others signed
/// now with this control plane's key (deterministic: the same facts give the same document).
pub(super) async fn views(
    state: &AppState,
    records: Vec<LicenseRecord>,
) -> AppResult<Vec<KongLicense>> {
    let ids: Vec<Uuid> = records.iter().map(|r| r.license.id).collect();
    let product_ids: Vec<Uuid> = records.iter().map(|r| r.license.product_id).collect();
    let customer_ids: Vec<Uuid> = records.iter().map(|r| r.license.customer_id).collect();
    let products: HashMap<Uuid, _> = products::fetch_many(&state.db, &product_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let customers: HashMap<Uuid, _> = customers::fetch_many(&state.db, &customer_ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut imported = store::imported_documents(&state.db, &ids).await?;
    let mut views = Vec::with_capacity(records.len());
    for record in records {
        let license = record.license;
        let payload = match imported.remove(&license.id) {
            Some(document) => document,
            None => {
                let (Some(product), Some(customer)) = (
                    products.get(&license.product_id),
                    customers.get(&license.customer_id),
                ) else {
                    // Deleted between the reads: the license is going too.
                    continue;
                };
                document::sign(
                    document::license_payload(&license, product, customer),
                    &state.signing_key,
                )
            }
        };
        views.push(KongLicense {
            created_at: license.created_at.timestamp(),
            id: license.id,
            payload,
            updated_at: license.updated_at.timestamp(),
        });
    }
    Ok(views)
}
