//! `/api/credentials`: LicenseSpring API credentials (DESIGN §8). Creating one shows its shared
//! key, once; listing never does. Data planes learn of new and deleted credentials through the
//! change feed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use license_shared::credential::ApiCredential;
use license_shared::{ApiError, codes};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::ApiJson;
use crate::api::common::fields::{self, SHORT_TEXT};
use crate::db::credentials as store;
use crate::db::products;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/credentials", get(list).post(create))
        .route("/api/credentials/{id}", delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateCredential {
    name: String,
    /// Product codes the credential may be used for.
    products: Vec<String>,
}

/// A credential as listed: never its shared key.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CredentialView {
    id: Uuid,
    name: String,
    api_key: String,
    products: Vec<String>,
    created_at: DateTime<Utc>,
}

/// The answer to a creation: the only time the shared key is shown.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedCredentialView {
    #[serde(flatten)]
    credential: CredentialView,
    shared_key: String,
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateCredential>,
) -> AppResult<Response> {
    let name = fields::required_text("name", body.name, SHORT_TEXT)?;
    if body.products.is_empty() {
        return Err(ApiError::bad_request(
            codes::INVALID_PRODUCTS,
            "products must name at least one product code",
        )
        .into());
    }
    let mut product_ids = Vec::with_capacity(body.products.len());
    for code in &body.products {
        let product = products::get_by_code(&state.db, code)
            .await?
            .ok_or_else(|| {
                ApiError::bad_request(
                    codes::UNKNOWN_PRODUCT,
                    format!("no product with code {code:?}"),
                )
            })?;
        if !product_ids.contains(&product.id) {
            product_ids.push(product.id);
        }
    }
    let credential = store::insert(&state.db, &name, &product_ids).await?;
    let shared_key = credential.shared_key.expose().to_owned();
    let view = CreatedCredentialView {
        credential: view(&state, credential).await?,
        shared_key,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn list(State(state): State<AppState>) -> AppResult<Json<Vec<CredentialView>>> {
    let mut views = Vec::new();
    for credential in store::list(&state.db).await? {
        views.push(view(&state, credential).await?);
    }
    Ok(Json(views))
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<StatusCode> {
    let id = fields::uuid("id", &id)?;
    if store::delete(&state.db, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            codes::CREDENTIAL_NOT_FOUND,
            format!("no credential with id {id}"),
        )
        .into())
    }
}

/// The listed form, with product codes (a deleted product simply drops out).
async fn view(state: &AppState, credential: ApiCredential) -> AppResult<CredentialView> {
    let codes = products::fetch_many(&state.db, &credential.product_ids)
        .await?
        .into_iter()
        .map(|product| product.code)
        .collect();
    Ok(CredentialView {
        id: credential.id,
        name: credential.name,
        api_key: credential.api_key,
        products: codes,
        created_at: credential.created_at,
    })
}
