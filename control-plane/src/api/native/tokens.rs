//! `/api/tokens`: create (the secret is shown once), list, and revoke admin tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use license_shared::{ApiError, codes};
use serde::{Deserialize, Serialize};

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::api::common::extract::ApiJson;
use crate::api::common::fields::{self, SHORT_TEXT};
use crate::db::tokens::{self as store, TokenRecord};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tokens", get(list).post(create))
        .route("/api/tokens/{id}", delete(revoke))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateToken {
    name: String,
    #[serde(default)]
    read_only: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedTokenView {
    #[serde(flatten)]
    record: TokenRecord,
    /// The secret; this is the only time it is shown.
    token: String,
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateToken>,
) -> AppResult<Response> {
    let name = fields::required_text("name", body.name, SHORT_TEXT)?;
    let created = store::create(&state.db, &name, body.read_only).await?;
    let view = CreatedTokenView {
        record: created.record,
        token: created.token,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn list(State(state): State<AppState>) -> AppResult<Json<Vec<TokenRecord>>> {
    Ok(Json(store::list(&state.db).await?))
}

async fn revoke(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<StatusCode> {
    let id = fields::uuid("id", &id)?;
    if store::revoke(&state.db, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(codes::TOKEN_NOT_FOUND, format!("no token with id {id}")).into())
    }
}
