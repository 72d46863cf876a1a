//! Periodic clean-up while the cluster listener runs: recorded telemetry batches older than
//! [`usage::BATCH_RETENTION`] are forgotten, so `usage_batches` does not grow for ever (their
//! counts stay in `usage_counters`).

use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::db::usage;

/// How often the clean-up runs (and once at start).
const EVERY: Duration = Duration::from_secs(60 * 60);

/// Prunes at start and every [`EVERY`] until `stop` fires. A failure is logged and tried
/// again at the next round.
pub(crate) async fn run(pool: PgPool, stop: CancellationToken) -> anyhow::Result<()> {
    let mut rounds = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = rounds.tick() => {
                match usage::prune_batches(&pool, Utc::now() - usage::BATCH_RETENTION).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::info!(pruned, "forgot old telemetry batches"),
                    Err(error) => tracing::warn!(%error, "pruning telemetry batches failed"),
                }
            }
            () = stop.cancelled() => return Ok(()),
        }
    }
}
