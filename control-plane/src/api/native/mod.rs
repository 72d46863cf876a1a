//! The native admin API (seed 003, camelCase, behind admin tokens): products, customers,
//! licenses by key, their activations, LicenseSpring API credentials, and admin tokens.

mod activations;
mod credentials;
mod customers;
mod licenses;
mod products;
mod tokens;

use axum::Router;

use crate::api::AppState;

/// Every native admin route; the caller puts them behind admin authentication.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(products::router())
        .merge(customers::router())
        .merge(licenses::router())
        .merge(activations::router())
        .merge(tokens::router())
        .merge(credentials::router())
}
