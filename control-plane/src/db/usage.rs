//! Usage from data-plane telemetry: requests served per month and data plane, and when each
//! license was last validated. A batch is recorded once, whole: its `(node, sequence)` is
//! recorded in the same transaction as its counts and validation times, so a batch resent
//! after a reconnect is acknowledged but not added again, and a failed one leaves nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

/// A validation time is rewritten only when it moves forward by more than this: a license
/// validated continuously would otherwise be rewritten by every batch of every data plane.
const VALIDATION_RESOLUTION: &str = "1 minute";

/// How long a recorded batch's `(node, sequence)` is kept to recognise a resend. A data plane
/// keeps at most 10,000 unacknowledged batches (28 hours at the default 10 s interval, 7 days at
/// one minute), so a batch older than this can no longer come back.
pub const BATCH_RETENTION: chrono::Duration = chrono::Duration::days(30);

/// Forgets the batches recorded before `before` (their counts stay); returns how many.
pub async fn prune_batches(pool: &PgPool, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let deleted = sqlx::query("DELETE FROM usage_batches WHERE received_at < $1")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected())
}

/// Records one telemetry batch: its request counts (`(bucket "YYYY-MM", requests)`) and its
/// validation times (which only move forward). Says whether it was new (`false`: already
/// recorded).
pub async fn record_batch(
    pool: &PgPool,
    node_id: Uuid,
    sequence: i64,
    counts: &[(String, i64)],
    validated: &[(Uuid, DateTime<Utc>)],
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let new = sqlx::query(
        "INSERT INTO usage_batches (node_id, sequence) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(node_id)
    .bind(sequence)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !new {
        return Ok(false);
    }
    for (bucket, requests) in counts {
        sqlx::query(
            "INSERT INTO usage_counters (bucket, node_id, request_count) VALUES ($1, $2, $3) \
             ON CONFLICT (bucket, node_id) \
             DO UPDATE SET request_count = usage_counters.request_count + EXCLUDED.request_count",
        )
        .bind(bucket)
        .bind(node_id)
        .bind(requests)
        .execute(&mut *tx)
        .await?;
    }
    record_validations(&mut tx, validated).await?;
    tx.commit().await?;
    Ok(true)
}

/// Moves validation times forward, for licenses that still exist. Rows are written in id
/// order, so batches of several data planes recorded at once never deadlock; license rows
/// are only read, never locked.
async fn record_validations(
    tx: &mut Transaction<'_, Postgres>,
    validations: &[(Uuid, DateTime<Utc>)],
) -> sqlx::Result<()> {
    if validations.is_empty() {
        return Ok(());
    }
    let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = validations.iter().copied().unzip();
    let sql = format!(
        "INSERT INTO license_activity AS a (license_id, last_validated_at) \
         SELECT v.id, v.at FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) \
         JOIN licenses l ON l.id = v.id ORDER BY v.id \
         ON CONFLICT (license_id) DO UPDATE SET last_validated_at = EXCLUDED.last_validated_at \
         WHERE a.last_validated_at < EXCLUDED.last_validated_at - interval '{VALIDATION_RESOLUTION}'"
    );
    sqlx::query(&sql)
        .bind(ids)
        .bind(times)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// When data planes last validated these licenses (those ever validated).
pub(crate) async fn last_validated(
    pool: &PgPool,
    ids: &[Uuid],
) -> sqlx::Result<HashMap<Uuid, DateTime<Utc>>> {
    let rows: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
        "SELECT license_id, last_validated_at FROM license_activity WHERE license_id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Drops a deleted license's validation time, in the transaction that deletes it.
pub(crate) async fn forget_license(
    tx: &mut Transaction<'_, Postgres>,
    license_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM license_activity WHERE license_id = $1")
        .bind(license_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Requests per month over every data plane, oldest month first.
pub(crate) async fn monthly(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT bucket, sum(request_count)::bigint FROM usage_counters \
         GROUP BY bucket ORDER BY bucket",
    )
    .fetch_all(pool)
    .await
}
