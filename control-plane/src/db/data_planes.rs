//! SQL of the registry of data planes (`GET /clustering/data-planes`), kept in PostgreSQL so that any
//! control plane lists every data plane, whichever control plane it is connected to.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use license_shared::protocol::Hello;

/// A data plane as the admin API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub(crate) struct DataPlane {
    pub id: Uuid,
    pub hostname: String,
    pub ip: String,
    pub version: String,
    pub revision: Option<i64>,
    pub connected: bool,
    pub last_seen: DateTime<Utc>,
}

/// Records a data plane that said hello.
pub(crate) async fn connected(pool: &PgPool, hello: &Hello, ip: &str) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO data_planes (id, hostname, ip, version, revision, connected) \
         VALUES ($1, $2, $3, $4, $5, true) \
         ON CONFLICT (id) DO UPDATE SET hostname = $2, ip = $3, version = $4, revision = $5, \
         connected = true, last_seen_at = now()",
    )
    .bind(hello.node_id)
    .bind(&hello.hostname)
    .bind(ip)
    .bind(&hello.version)
    .bind(hello.revision)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records, in one statement, that the data planes `ids` are still there, with the revision
/// each reported applied (`None`: unchanged).
pub(crate) async fn record_activity(
    pool: &PgPool,
    ids: &[Uuid],
    revisions: &[Option<i64>],
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE data_planes SET revision = COALESCE(v.revision, data_planes.revision), \
         last_seen_at = now() \
         FROM unnest($1::uuid[], $2::int8[]) AS v(id, revision) WHERE data_planes.id = v.id",
    )
    .bind(ids)
    .bind(revisions)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn disconnected(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("UPDATE data_planes SET connected = false, last_seen_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub(crate) async fn list(pool: &PgPool) -> sqlx::Result<Vec<DataPlane>> {
    sqlx::query_as(
        "SELECT id, hostname, ip, version, revision, connected, last_seen_at AS last_seen \
         FROM data_planes ORDER BY hostname, id",
    )
    .fetch_all(pool)
    .await
}
