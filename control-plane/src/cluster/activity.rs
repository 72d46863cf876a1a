//! Data-plane activity for the registry (`GET /clustering/data-planes`), written for every
//! session of this control plane at once: sessions note the revision each data plane reports
//! applied and that it is still there, in memory, and one task writes what changed every
//! [`FLUSH_EVERY`] in a single statement. A session never waits for the database, and 1,000
//! data planes acknowledging a change cost one registry write, not 1,000 committed
//! transactions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::db::data_planes;

/// How often noted activity is written.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Activity noted since the last write: per data plane, the newest applied revision if one
/// was reported.
#[derive(Debug, Clone, Default)]
pub(crate) struct Activity {
    noted: Arc<Mutex<HashMap<Uuid, Option<i64>>>>,
}

impl Activity {
    /// `node` reports it has applied everything up to `revision`.
    pub(crate) fn applied(&self, node: Uuid, revision: i64) {
        let mut noted = lock(&self.noted);
        let entry = noted.entry(node).or_insert(None);
        *entry = Some(entry.map_or(revision, |known| known.max(revision)));
    }

    /// `node` is still there.
    pub(crate) fn seen(&self, node: Uuid) {
        lock(&self.noted).entry(node).or_insert(None);
    }

    fn take(&self) -> HashMap<Uuid, Option<i64>> {
        std::mem::take(&mut *lock(&self.noted))
    }
}

/// Writes the noted activity every [`FLUSH_EVERY`] until `stop` fires, then once more.
pub(crate) async fn run(
    pool: PgPool,
    activity: Activity,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(FLUSH_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = every.tick() => false,
            () = stop.cancelled() => true,
        };
        let noted = activity.take();
        if !noted.is_empty() {
            let (ids, revisions): (Vec<Uuid>, Vec<Option<i64>>) = noted.into_iter().unzip();
            if let Err(error) = data_planes::record_activity(&pool, &ids, &revisions).await {
                // The next round notes them again (pings keep coming).
                tracing::debug!(%error, data_planes = ids.len(), "registry not updated");
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A map of plain values: nothing is left half-updated by a panic.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
