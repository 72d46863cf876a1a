//! Kong's Licenses admin API (seed 000) on the control plane: `/licenses` CRUD on the same
//! licenses the native API manages, each shown as its signed document (Kong's envelope, epoch
//! seconds), and `GET /license/report`. Errors come back in Kong's shape,
//! `{"message": "…", "name": "<our code>"}`; `Kong-Admin-Token` authenticates like Bearer.
//! Kong's `GET /clustering/data-planes` lives here too, though it keeps the error shape it
//! has always had (see [`clustering_router`]).

mod clustering;
mod import;
mod licenses;
mod report;

use axum::Json;
use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use license_shared::ApiError;
use license_shared::http::method_not_allowed;
use serde_json::json;

use crate::api::AppState;

/// Largest error body rewritten into Kong's shape (ours are small).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// `/licenses` and `/license/report`, to be wrapped in [`error_shape`].
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(licenses::router())
        .merge(report::router())
        // Set on these routes themselves (the app's default would replace an unset one after
        // `error_shape` is layered on), so a wrong method is a 405 in Kong's shape too.
        .method_not_allowed_fallback(method_not_allowed)
}

/// `GET /clustering/data-planes`. Mounted with the native admin routes, outside
/// [`error_shape`], so its errors keep the native `{status, code, message}` shape.
pub(crate) fn clustering_router() -> Router<AppState> {
    clustering::router()
}

/// Middleware: rewrites our `{status, code, message}` errors into Kong's `{message, name}`.
/// Any other error body (a framework rejection a handler did not map) is wrapped the same way,
/// named after its status, so Kong routes never answer an error in another shape.
pub(crate) async fn error_shape(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status().is_success() || response.status().is_informational() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let (message, name) = match serde_json::from_slice::<ApiError>(&bytes) {
        Ok(error) => (error.message, error.code.into_owned()),
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
            let reason = parts.status.canonical_reason().unwrap_or("error");
            let message = if text.is_empty() {
                reason.to_owned()
            } else {
                text
            };
            (message, reason.to_ascii_lowercase().replace(' ', "_"))
        }
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let mut kong = Json(json!({ "message": message, "name": name })).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE {
            kong.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *kong.status_mut() = parts.status;
    kong
}
