//! Kong's Licenses admin API (seed 000) on the control plane: `/licenses` CRUD on the same
//! licenses the native API manages, each shown as its signed document (Kong's envelope, epoch
//! seconds), and `GET /license/report`. Errors come back in Kong's shape,
//! `{"message": "…", "name": "<our code>"}`; `Kong-Admin-Token` authenticates like Bearer.

mod import;
mod licenses;
mod report;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use license_shared::ApiError;
use license_shared::http::method_not_allowed;
use serde_json::json;

use super::AppState;

/// Largest error body rewritten into Kong's shape (ours are small).
const MAX_ERROR_BODY: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(licenses::router())
        .merge(report::router())
        // Set on these routes themselves (the app's default would replace an unset one after
        // `error_shape` is layered on), so a wrong method is a 405 in Kong's shape too.
        .method_not_allowed_fallback(method_not_allowed)
}

/// Middleware: rewrites our `{status, code, message}` errors into Kong's `{message, name}`.
pub async fn error_shape(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    match serde_json::from_slice::<ApiError>(&bytes) {
        Ok(error) => {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            let body = Json(json!({ "message": error.message, "name": error.code }));
            let mut kong = body.into_response();
            for (name, value) in &parts.headers {
                if name != axum::http::header::CONTENT_TYPE {
                    kong.headers_mut().insert(name.clone(), value.clone());
                }
            }
            *kong.status_mut() = parts.status;
            kong
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}
