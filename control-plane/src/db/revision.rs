//! The cluster-wide revision counter (DESIGN §4).
//!
//! Call [`stamp`] or [`tombstone`] as the LAST statements of a transaction, after the entity's
//! own row is written (and so locked). Taking the counter's row lock last keeps the time it is
//! held short and the lock order fixed (entity rows, then the counter), so writers never
//! deadlock, and because the lock is held until commit, revision order equals commit order.

use license_shared::protocol::EntityKind;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::entity_kind::EntityKindSql;

/// Takes the next revision and records it on the entity row `id` (already written by this
/// transaction). Returns the revision.
pub(crate) async fn stamp(
    tx: &mut Transaction<'_, Postgres>,
    entity: EntityKind,
    id: Uuid,
) -> sqlx::Result<i64> {
    let sql = format!(
        "WITH next AS (UPDATE revision_counter SET value = value + 1 RETURNING value) \
         UPDATE {} SET revision = next.value FROM next WHERE id = $1 RETURNING next.value",
        entity.table()
    );
    let revision = sqlx::query_scalar(&sql)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?;
    announce(tx, revision).await?;
    Ok(revision)
}

/// The channel on which committed revisions are announced.
pub(crate) const CHANNEL: &str = "license_revisions";

/// Announces `revision` to every listening control plane; PostgreSQL delivers it at commit,
/// and not at all on rollback.
async fn announce(tx: &mut Transaction<'_, Postgres>, revision: i64) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(revision.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes the next revision for the deletion of entity `id` (already deleted by this
/// transaction) and leaves a tombstone. Returns the revision.
pub(crate) async fn tombstone(
    tx: &mut Transaction<'_, Postgres>,
    entity: EntityKind,
    id: Uuid,
) -> sqlx::Result<i64> {
    let revision = sqlx::query_scalar(
        "WITH next AS (UPDATE revision_counter SET value = value + 1 RETURNING value) \
         INSERT INTO tombstones (revision, entity, entity_id) \
         SELECT next.value, $1, $2 FROM next RETURNING revision",
    )
    .bind(entity.sql_name())
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    announce(tx, revision).await?;
    Ok(revision)
}

/// The newest revision handed out (committed or in flight).
pub async fn current(pool: &sqlx::PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT value FROM revision_counter")
        .fetch_one(pool)
        .await
}

/// The identity of this database's license set (see migration 0003).
pub(crate) async fn cluster_id(pool: &sqlx::PgPool) -> sqlx::Result<Uuid> {
    sqlx::query_scalar("SELECT id FROM cluster_identity")
        .fetch_one(pool)
        .await
}
