//! Usage counters from data-plane telemetry: requests served per month and data plane. A batch
//! is counted once: its `(node, sequence)` is recorded in the same transaction as its counts,
//! so a batch resent after a reconnect is acknowledged but not added again.

use sqlx::PgPool;
use uuid::Uuid;

/// Adds one telemetry batch's counts (`(bucket "YYYY-MM", requests)`); says whether it was
/// new (`false`: already counted).
pub async fn record_batch(
    pool: &PgPool,
    node_id: Uuid,
    sequence: i64,
    counts: &[(String, i64)],
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
    tx.commit().await?;
    Ok(true)
}

/// Requests per month over every data plane, oldest month first.
pub async fn monthly(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT bucket, sum(request_count)::bigint FROM usage_counters \
         GROUP BY bucket ORDER BY bucket",
    )
    .fetch_all(pool)
    .await
}
