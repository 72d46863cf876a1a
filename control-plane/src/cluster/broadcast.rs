//! The change broadcaster: one reader of the change feed for every data-plane session on this
//! control plane. When a new revision commits it reads the changes once, encodes the delta
//! message once per codec, and hands the same frames to every session through a broadcast
//! channel, instead of each session querying the feed and encoding on its own (at 1,000
//! sessions that was 1,000 feed queries per change through a 20-connection pool).
//!
//! A session forwards a shared delta only when it starts exactly where the session is; when it
//! falls behind (the channel lagged, or a delta does not line up) it reads the feed itself
//! from its own revision, as it does for its initial sync, so nothing is ever skipped.

use std::sync::Arc;
use std::time::Duration;

use license_shared::protocol::{self, Codec, CpToDp};
use sqlx::PgPool;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::db::sync::deltas_after;

/// Shared deltas a session may fall behind by before it reads the feed itself.
pub(crate) const CAPACITY: usize = 256;
/// Feed entries per delta message (the same bound as a session's own reads).
pub(crate) const DELTA_BATCH: i64 = 1_000;
/// How long to wait before reading again after the database failed.
const RETRY: Duration = Duration::from_millis(200);

/// One delta message, encoded once for every codec: the changes after `after` up to and
/// including `revision`.
#[derive(Debug)]
pub(crate) struct SharedDelta {
    pub after: i64,
    pub revision: i64,
    deflate: Vec<u8>,
    zstd: Vec<u8>,
}

impl SharedDelta {
    /// The encoded frame for a data plane reading `codec`.
    pub(crate) fn frame(&self, codec: Codec) -> &[u8] {
        match codec {
            Codec::Deflate => &self.deflate,
            Codec::Zstd => &self.zstd,
        }
    }
}

/// Reads and broadcasts every change as its revision becomes known, until `stop` fires.
pub(crate) async fn run(
    pool: PgPool,
    mut revisions: watch::Receiver<i64>,
    deltas: broadcast::Sender<Arc<SharedDelta>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut sent = *revisions.borrow_and_update();
    loop {
        tokio::select! {
            changed = revisions.changed() => if changed.is_err() { return Ok(()) },
            () = stop.cancelled() => return Ok(()),
        }
        let newest = *revisions.borrow_and_update();
        if deltas.receiver_count() == 0 {
            // No session listens; one that subscribes later syncs itself first.
            sent = sent.max(newest);
            continue;
        }
        while sent < newest {
            match deltas_after(&pool, sent, DELTA_BATCH).await {
                Ok(Some(batch)) => {
                    let message = CpToDp::Deltas {
                        revision: batch.revision,
                        changes: batch.changes,
                    };
                    let shared = SharedDelta {
                        after: sent,
                        revision: batch.revision,
                        deflate: protocol::encode_with(&message, Codec::Deflate),
                        zstd: protocol::encode_with(&message, Codec::Zstd),
                    };
                    sent = batch.revision;
                    // No receiver left is no error: sessions come and go.
                    deltas.send(Arc::new(shared)).ok();
                    if batch.last {
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, after = sent, "cannot read the change feed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => {}
                        () = stop.cancelled() => return Ok(()),
                    }
                }
            }
        }
    }
}
