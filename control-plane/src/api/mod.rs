//! The HTTP surface of the control plane on `--admin-listen`, one folder per surface: the
//! native admin API ([`native`], seed 003), Kong's ([`kong`], seed 000) and Craft's ([`craft`],
//! seed 001) dialects, all behind admin tokens; the database-backed public verify/validate
//! ([`public`]); and the open operations endpoints ([`ops`]). What they share (auth, the error
//! type, extractors, field parsing, pagination) is in [`common`].

pub(crate) mod common;
mod craft;
mod kong;
mod native;
mod ops;
mod public;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use license_shared::http::{method_not_allowed, not_found, panic_response};
use license_shared::signing::{ClusterKey, ed25519_dalek::VerifyingKey};
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use common::auth;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) db: PgPool,
    pub(crate) auth: Arc<auth::AuthConfig>,
    /// The key this control plane signs with (the cluster's active key at start).
    pub(crate) signing_key: Arc<ClusterKey>,
    /// Issuers whose signed documents Kong's `/licenses` may import.
    pub(crate) trusted_issuers: Arc<Vec<VerifyingKey>>,
}

/// The whole router, with state applied.
pub(crate) fn app(state: AppState, max_body_bytes: usize) -> Router {
    let admin = Router::new()
        .merge(native::router())
        .merge(craft::router())
        .merge(kong::clustering_router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    let kong = kong::router().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin,
    ));
    Router::new()
        .merge(admin)
        .merge(kong.layer(axum::middleware::from_fn(kong::error_shape)))
        .merge(public::router())
        .merge(ops::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
