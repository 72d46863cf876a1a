//! Registry writes of one session, off the session's path: the reader hands each applied
//! revision to a watch channel, and this task writes the latest whenever the last write has
//! finished, and the last-seen time once per ping interval. A session never waits for the
//! database between two messages, and a burst of changes costs a few registry writes, not one
//! committed transaction per change.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::data_planes;

/// Runs until the session drops the sender.
pub(super) async fn run(
    pool: PgPool,
    node_id: Uuid,
    mut applied: watch::Receiver<i64>,
    seen_every: Duration,
) {
    let mut seen = tokio::time::interval(seen_every);
    seen.tick().await;
    loop {
        let written = tokio::select! {
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
                let revision = *applied.borrow_and_update();
                data_planes::applied(&pool, node_id, revision).await
            }
            _ = seen.tick() => data_planes::seen(&pool, node_id).await,
        };
        if let Err(error) = written {
            tracing::debug!(%error, %node_id, "registry not updated");
        }
    }
}
