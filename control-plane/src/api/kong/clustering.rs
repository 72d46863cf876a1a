//! `GET /clustering/data-planes`: the data planes known to the cluster (Kong's shape: id,
//! hostname, ip, version, last_seen, revision, sync_status).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use uuid::Uuid;

use crate::api::AppState;
use crate::api::common::error::AppResult;
use crate::db::data_planes as registry;
use crate::db::revision;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/clustering/data-planes", get(list))
}

#[derive(Debug, Serialize)]
struct DataPlaneView {
    id: Uuid,
    hostname: String,
    ip: String,
    version: String,
    /// Epoch seconds, as Kong reports it.
    last_seen: i64,
    revision: Option<i64>,
    /// `in_sync`, `syncing` (connected, behind), or `disconnected`.
    sync_status: &'static str,
}

#[derive(Debug, Serialize)]
struct DataPlanesView {
    data: Vec<DataPlaneView>,
    /// The newest committed revision, to compare each data plane's with.
    revision: i64,
}

async fn list(State(state): State<AppState>) -> AppResult<Json<DataPlanesView>> {
    let current = revision::current(&state.db).await?;
    let data = registry::list(&state.db)
        .await?
        .into_iter()
        .map(|dp| DataPlaneView {
            sync_status: match (dp.connected, dp.revision) {
                (false, _) => "disconnected",
                (true, Some(revision)) if revision >= current => "in_sync",
                (true, _) => "syncing",
            },
            id: dp.id,
            hostname: dp.hostname,
            ip: dp.ip,
            version: dp.version,
            last_seen: dp.last_seen.timestamp(),
            revision: dp.revision,
        })
        .collect();
    Ok(Json(DataPlanesView {
        data,
        revision: current,
    }))
}
