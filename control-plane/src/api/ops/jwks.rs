//! `GET /.well-known/jwks.json`: the cluster's public signing keys (RFC 8037), active first,
//! for apps checking signed documents and `LicenseSignature` headers offline. No auth.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use license_shared::signing::Jwks;

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::db::signing_keys;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/.well-known/jwks.json", get(jwks))
}

async fn jwks(State(state): State<AppState>) -> AppResult<Json<Jwks>> {
    let keys = signing_keys::all(&state.db).await?;
    Ok(Json(Jwks {
        keys: keys.iter().map(|key| key.jwk()).collect(),
    }))
}
