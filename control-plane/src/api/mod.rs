//! The HTTP surface of the control plane on `--admin-listen`: the native admin API (seed 003,
//! behind admin tokens), the database-backed public verify/validate, and `/status`.

pub mod activations;
pub mod auth;
pub mod clustering;
pub mod craft;
pub mod credentials;
pub mod customers;
pub mod error;
pub mod extract;
pub mod fields;
pub mod jwks;
pub mod kong;
pub mod licenses;
pub mod pagination;
pub mod products;
pub mod public;
pub mod status;
pub mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use license_shared::http::{method_not_allowed, not_found, panic_response};
use license_shared::signing::{ClusterKey, ed25519_dalek::VerifyingKey};
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub db: PgPool,
    pub auth: Arc<auth::AuthConfig>,
    /// The key this control plane signs with (the cluster's active key at start).
    pub signing_key: Arc<ClusterKey>,
    /// Issuers whose signed documents Kong's `/licenses` may import.
    pub trusted_issuers: Arc<Vec<VerifyingKey>>,
}

/// The whole router, with state applied.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    let admin = Router::new()
        .merge(products::router())
        .merge(customers::router())
        .merge(licenses::router())
        .merge(activations::router())
        .merge(tokens::router())
        .merge(credentials::router())
        .merge(craft::router())
        .merge(clustering::router())
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
        .merge(jwks::router())
        .merge(status::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
