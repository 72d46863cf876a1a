//! The public API of a data plane, answered from memory: the native routes ([`native`]),
//! LicenseSpring's License API ([`licensespring`]), and, on its own listener, [`status`]. This
//! module puts the public routes together as one service.

pub mod licensespring;
mod native;
mod request_counter;
mod seat;
pub mod status;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use license_shared::http::panic_response;
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;

use self::request_counter::{count_routed, unrouted_method, unrouted_path};
use crate::cluster::Link;
use crate::store::Store;

/// What the public handlers reach.
#[derive(Debug, Clone)]
pub struct PublicState {
    pub store: Arc<Store>,
    pub link: Arc<Link>,
    pub activation_timeout: Duration,
}

/// The public API as one service: the routes, then what every request passes through once —
/// catching a handler's panic as a 500 in the error shape, the body-size limit, and counting
/// for the usage report. These wrap the router rather than each route (`Router::layer`), which
/// would box and clone them again per route on every request.
pub fn service(
    state: PublicState,
    max_body_bytes: usize,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static
{
    let count = count_routed(state.link.clone());
    let router = Router::new()
        .route("/api/licenses/verify", post(native::verify))
        .route("/api/licenses/validate", post(native::validate))
        .route("/.well-known/jwks.json", get(native::jwks))
        .route("/api/licenses/{key}/document", get(native::document))
        .merge(licensespring::router())
        .fallback(unrouted_path)
        .method_not_allowed_fallback(unrouted_method)
        .with_state(state);
    ServiceBuilder::new()
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(count)
        .service(router)
}
