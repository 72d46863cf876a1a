//! Counting the requests served on the public routes for the usage report (see
//! [`crate::usage`]): one relaxed atomic add per answered request. It wraps the whole router
//! once, as a plain response map, rather than every route (`Router::route_layer`, which boxes
//! and clones each route's service again on every request) or `axum::middleware::from_fn`
//! (which boxes every request's future); both showed in the verify profile. A request no route
//! took is marked by the fallbacks with [`Unrouted`] and is not counted.

use std::sync::Arc;

use axum::Extension;
use axum::response::{IntoResponse, Response};
use license_shared::http::{method_not_allowed, not_found};
use tower::util::MapResponseLayer;

use crate::cluster::Link;

/// Response extension set by the router's fallbacks: no public route answered this request.
#[derive(Debug, Clone, Copy)]
pub struct Unrouted;

/// The layer that counts every answered request not marked [`Unrouted`].
pub fn count_routed(
    link: Arc<Link>,
) -> MapResponseLayer<impl Fn(Response) -> Response + Clone + Send + Sync + 'static> {
    MapResponseLayer::new(move |response: Response| {
        if response.extensions().get::<Unrouted>().is_none() {
            link.telemetry.count_request();
        }
        response
    })
}

/// The fallback for a path no public route takes: the shared 404, marked [`Unrouted`].
pub async fn unrouted_path() -> impl IntoResponse {
    (Extension(Unrouted), not_found().await)
}

/// The fallback for a route asked with another method: the shared 405, marked [`Unrouted`].
pub async fn unrouted_method() -> impl IntoResponse {
    (Extension(Unrouted), method_not_allowed().await)
}
