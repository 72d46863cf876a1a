//! The status listener: `/status` (revision, control-plane link, license count) and
//! `/status/ready` (503 until the data plane has a state to serve, 200 after, also while the
//! control plane is away).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use license_shared::{ApiError, codes};
use serde_json::json;
use uuid::Uuid;

use crate::cluster::Link;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct StatusState {
    pub node_id: Uuid,
    pub store: Arc<Store>,
    pub link: Arc<Link>,
}

pub fn router(state: StatusState) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/status/ready", get(ready))
        .with_state(state)
}

async fn status(State(state): State<StatusState>) -> Json<serde_json::Value> {
    let snapshot = state.store.load();
    let link = &state.link;
    Json(json!({
        "nodeId": state.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "ready": state.store.has_state(),
        "revision": state.store.has_state().then(|| state.store.revision()),
        "licenses": snapshot.license_count(),
        "controlPlane": {
            "connected": link.is_connected(),
            "connections": link.connections.load(Ordering::Relaxed),
            "snapshotsReceived": link.snapshots_received.load(Ordering::Relaxed),
            "deltasReceived": link.deltas_received.load(Ordering::Relaxed),
        },
    }))
}

async fn ready(State(state): State<StatusState>) -> Response {
    if state.store.has_state() {
        Json(json!({ "ready": true })).into_response()
    } else {
        ApiError::unavailable(
            codes::CONTROL_PLANE_UNAVAILABLE,
            "no license state yet: waiting for the control plane or a disk cache",
        )
        .into_response()
    }
}
