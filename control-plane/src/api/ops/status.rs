//! Operational endpoints: `/status` (what this node knows) and `/status/ready` (503 while the
//! database is unreachable, so load balancers stop sending traffic).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use license_shared::{ApiError, codes};
use serde_json::json;

use crate::api::AppState;
use crate::db::revision;

/// How long a status probe waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/status", get(status))
        .route("/status/ready", get(ready))
}

async fn probe(state: &AppState) -> Option<i64> {
    tokio::time::timeout(PROBE_TIMEOUT, revision::current(&state.db))
        .await
        .ok()
        .and_then(Result::ok)
}

async fn status(State(state): State<AppState>) -> Json<serde_json::Value> {
    let revision = probe(&state).await;
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "database": {
            "reachable": revision.is_some(),
            "revision": revision,
        },
        "pool": {
            "size": state.db.size(),
            "idle": state.db.num_idle(),
        },
    }))
}

async fn ready(State(state): State<AppState>) -> Response {
    if probe(&state).await.is_some() {
        (StatusCode::OK, Json(json!({ "ready": true }))).into_response()
    } else {
        ApiError::unavailable(codes::DATABASE_UNAVAILABLE, "the database is unreachable")
            .into_response()
    }
}
