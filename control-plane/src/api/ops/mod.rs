//! Operations endpoints, open to anyone: `/status`, `/status/ready`, and the JWKS of the
//! cluster's signing keys at `/.well-known/jwks.json`.

mod jwks;
mod status;

use axum::Router;

use crate::api::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(jwks::router()).merge(status::router())
}
