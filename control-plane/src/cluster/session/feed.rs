//! The feed of one data plane: what it lacks at first (the deltas after its revision, or a
//! full snapshot streamed in chunks), then every change as it commits, forwarded from the
//! [`crate::cluster::broadcast`] (read and encoded once for all sessions). It runs as its own task
//! and hands encoded frames to the session's outbox, waiting when the outbox is full: a slow
//! data plane slows only its own feed, and a stalled one is dropped by the outbox's send
//! timeout.

use std::time::{Duration, Instant};

use license_shared::protocol::{self, Codec, CpToDp, Hello};
use tokio::sync::{broadcast, mpsc};
use tokio_util::task::AbortOnDropHandle;

use super::SessionError;
use super::outbox::Outgoing;
use crate::cluster::ClusterContext;
use crate::db::sync::{SnapshotReader, deltas_after};

use crate::cluster::broadcast::DELTA_BATCH;

/// The session's outbox, as the feed uses it.
#[derive(Debug, Clone)]
pub(super) struct Outbox(pub(super) mpsc::Sender<Outgoing>);

impl Outbox {
    async fn send(&self, frame: Vec<u8>) -> Result<(), SessionError> {
        self.0
            .send(Outgoing::Frame(frame))
            .await
            .map_err(|_| SessionError::WriterGone)
    }
}

/// Sends the initial sync, then the changes as they commit, until the revisions end (the
/// control plane stops) or the outbox goes.
pub(super) async fn run(
    context: ClusterContext,
    outbox: Outbox,
    hello: Hello,
    codec: Codec,
) -> Result<(), SessionError> {
    // Subscribed first: nothing broadcast during the initial sync is missed.
    let mut shared = context.deltas.subscribe();
    let sent = initial_sync(&context, &outbox, &hello, codec).await?;
    // Whatever committed while the initial sync was being sent.
    let mut sent = send_deltas(&context, &outbox, sent, codec).await?;
    loop {
        match shared.recv().await {
            Ok(delta) if delta.revision <= sent => {}
            Ok(delta) if delta.after == sent => {
                outbox.send(delta.frame(codec).to_vec()).await?;
                sent = delta.revision;
            }
            // Out of line with this session, or fallen behind: read the feed itself.
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                sent = send_deltas(&context, &outbox, sent, codec).await?;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// Sends what the data plane lacks; returns the revision it will have once applied.
async fn initial_sync(
    context: &ClusterContext,
    outbox: &Outbox,
    hello: &Hello,
    codec: Codec,
) -> Result<i64, SessionError> {
    let committed = crate::db::revision::current(&context.pool).await?;
    let cluster_id = crate::db::revision::cluster_id(&context.pool).await?;
    match hello.revision {
        // Resume: the data plane's state comes from this database, which still has the
        // history after its revision.
        Some(revision) if revision <= committed && hello.cluster_id == Some(cluster_id) => {
            send_deltas(context, outbox, revision, codec).await
        }
        _ => send_snapshot(context, outbox, cluster_id, codec).await,
    }
}

async fn send_snapshot(
    context: &ClusterContext,
    outbox: &Outbox,
    cluster_id: uuid::Uuid,
    codec: Codec,
) -> Result<i64, SessionError> {
    let started = Instant::now();
    let mut reader = SnapshotReader::open(&context.pool).await?;
    let revision = reader.revision();
    let mut bytes = send(
        outbox,
        &CpToDp::SnapshotBegin {
            revision,
            cluster_id,
        },
    )
    .await?;
    // Reading the next chunk from PostgreSQL, encoding the last ones (on blocking threads) and
    // sending overlap; frames are sent in the order they were read.
    type Encoded = tokio::task::JoinHandle<(usize, Vec<u8>, Duration)>;
    let (frames, mut encoded) = mpsc::channel::<sqlx::Result<Encoded>>(4);
    let producer = AbortOnDropHandle::new(tokio::spawn(async move {
        let mut reading = Duration::ZERO;
        loop {
            let read_started = Instant::now();
            let next = reader.next_chunk().await;
            reading += read_started.elapsed();
            let chunk = match next {
                Ok(Some(changes)) => changes,
                Ok(None) => return reading,
                Err(error) => {
                    frames.send(Err(error)).await.ok();
                    return reading;
                }
            };
            let encoding = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let count = chunk.len();
                let frame = protocol::encode_with(&CpToDp::SnapshotChunk { changes: chunk }, codec);
                (count, frame, started.elapsed())
            });
            if frames.send(Ok(encoding)).await.is_err() {
                return reading;
            }
        }
    }));
    let (mut entities, mut encoding) = (0, Duration::ZERO);
    while let Some(frame) = encoded.recv().await {
        let encoded = match frame {
            Ok(encoding) => encoding
                .await
                .map_err(|error| SessionError::Encoding(error.to_string())),
            Err(error) => Err(error.into()),
        };
        let (count, frame, took) = match encoded {
            Ok(encoded) => encoded,
            Err(error) => {
                producer.abort();
                return Err(error);
            }
        };
        entities += count;
        encoding += took;
        bytes += frame.len();
        outbox.send(frame).await?;
    }
    let reading = producer.await.unwrap_or_default();
    bytes += send(outbox, &CpToDp::SnapshotEnd { revision }).await?;
    tracing::info!(
        revision,
        entities,
        bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        database_ms = reading.as_millis() as u64,
        encoding_ms = encoding.as_millis() as u64,
        "snapshot sent"
    );
    Ok(revision)
}

/// Sends every change after `after`; returns the revision reached.
async fn send_deltas(
    context: &ClusterContext,
    outbox: &Outbox,
    mut after: i64,
    codec: Codec,
) -> Result<i64, SessionError> {
    while let Some(batch) = deltas_after(&context.pool, after, DELTA_BATCH).await? {
        let (revision, count) = (batch.revision, batch.changes.len());
        let message = CpToDp::Deltas {
            revision,
            changes: batch.changes,
        };
        let bytes = send_with(outbox, &message, codec).await?;
        tracing::debug!(after, revision, count, bytes, "deltas sent");
        after = revision;
        if batch.last {
            break;
        }
    }
    Ok(after)
}

/// Sends one message that any data plane reads; returns its size on the wire.
async fn send(outbox: &Outbox, message: &CpToDp) -> Result<usize, SessionError> {
    send_with(outbox, message, Codec::Deflate).await
}

/// Sends one message compressed with `codec` (when compressed); returns its size on the wire.
async fn send_with(outbox: &Outbox, message: &CpToDp, codec: Codec) -> Result<usize, SessionError> {
    let frame = protocol::encode_with(message, codec);
    let size = frame.len();
    outbox.send(frame).await?;
    Ok(size)
}
