//! One connection to the control plane, as two tasks: this one reads (applying snapshots and
//! deltas, resolving answers, checking that the control plane is not silent) and a writer
//! ([`write`]) owns the socket's sending half with a bounded queue, a send timeout on every
//! frame, the pings and the telemetry. Neither the pings nor the silence check ever wait on a
//! stalled write: a control plane that stops reading is dropped after the send timeout.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use license_shared::protocol::{self, CpToDp, DpToCp, Hello, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::task::AbortOnDropHandle;

use super::client::Parts;
use crate::store::{IntakeError, SnapshotIntake};

pub(super) type Socket = WebSocketStream<TlsStream<TcpStream>>;
type Sender = SplitSink<Socket, Message>;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(super) enum LinkError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("TLS handshake with the control plane failed: {0}")]
    Tls(std::io::Error),
    #[error("invalid control-plane server name {0:?}")]
    ServerName(String),
    #[error("websocket handshake failed: {0}")]
    Websocket(tokio_tungstenite::tungstenite::Error),
    #[error("timed out during {0}")]
    Timeout(&'static str),
    #[error("the control plane refused this data plane: {0}")]
    Rejected(String),
    #[error("the control plane closed the connection: {0}")]
    Closed(String),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("connection lost: {0}")]
    Connection(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the control plane has been silent for {0:?}")]
    Silent(Duration),
    #[error("the control plane did not take a message within {0:?}")]
    SendTimeout(Duration),
    #[error("building the snapshot failed: {0}")]
    Snapshot(#[from] IntakeError),
}

/// Runs one connection until it drops; the caller reconnects.
pub(super) async fn run(parts: &Parts, mut socket: Socket) -> Result<(), LinkError> {
    let config = &parts.config;
    let hello = Hello {
        node_id: config.node_id,
        hostname: config.hostname.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_major: PROTOCOL_MAJOR,
        protocol_minor: PROTOCOL_MINOR,
        revision: parts.store.has_state().then(|| parts.store.revision()),
        cluster_id: parts.store.load().cluster_id(),
    };
    let send_timeout = config.ping_interval * 3;
    let frame = Message::Binary(protocol::encode(&DpToCp::Hello(hello.clone())).into());
    tokio::time::timeout(send_timeout, socket.send(frame))
        .await
        .map_err(|_| LinkError::SendTimeout(send_timeout))??;
    tracing::info!(
        control_plane = %config.control_plane, revision = ?hello.revision,
        "connected to the control plane"
    );
    license_shared::fault::point("cluster-client");

    let (sender, mut receiver) = socket.split();
    let requests = parts.link.attach();
    let (applied, acknowledging) = watch::channel(None::<i64>);
    let writer = AbortOnDropHandle::new(tokio::spawn(write(
        parts.clone(),
        sender,
        requests,
        acknowledging,
    )));
    tokio::pin!(writer);

    let mut snapshot: Option<SnapshotIntake> = None;
    // Where a snapshot's time goes on this side, for the log.
    let mut snapshot_decoding = Duration::ZERO;
    let mut silence_check = tokio::time::interval(config.ping_interval);
    let mut last_heard = Instant::now();
    let silence_limit = config.ping_interval * 3;
    loop {
        tokio::select! {
            incoming = receiver.next() => {
                last_heard = Instant::now();
                let message = match incoming {
                    None => return Err(LinkError::Closed("end of stream".into())),
                    Some(message) => message?,
                };
                let frame = match message {
                    Message::Binary(frame) => frame,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Close(frame) => {
                        let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                        return Err(LinkError::Closed(reason));
                    }
                    Message::Text(_) | Message::Frame(_) => {
                        return Err(LinkError::Protocol("unexpected text frame".into()));
                    }
                };
                let decoding = Instant::now();
                let message = protocol::decode::<CpToDp>(&frame)
                    .map_err(|error| LinkError::Protocol(format!("undecodable message: {error}")))?;
                if snapshot.is_some() {
                    snapshot_decoding += decoding.elapsed();
                }
                let in_snapshot = snapshot.is_some();
                let revision = apply(parts, &mut snapshot, message)?;
                if in_snapshot && snapshot.is_none() {
                    tracing::info!(
                        decoding_ms = snapshot_decoding.as_millis() as u64,
                        "snapshot received"
                    );
                    snapshot_decoding = Duration::ZERO;
                }
                if revision.is_some() {
                    // Coalesced: the writer acknowledges the newest revision it sees.
                    applied.send_replace(revision);
                }
            }
            ended = &mut writer => {
                return match ended {
                    Ok(result) => result,
                    Err(error) => Err(LinkError::Protocol(format!("the writer stopped: {error}"))),
                };
            }
            _ = silence_check.tick() => {
                if last_heard.elapsed() > silence_limit {
                    return Err(LinkError::Silent(last_heard.elapsed()));
                }
            }
        }
    }
}

/// The sending half: requests (in order, dropped when their deadline passed while queued),
/// acknowledgements of applied revisions, pings and telemetry, each frame under a timeout.
async fn write(
    parts: Parts,
    mut sender: Sender,
    mut requests: mpsc::Receiver<DpToCp>,
    mut applied: watch::Receiver<Option<i64>>,
) -> Result<(), LinkError> {
    let config = &parts.config;
    let send_timeout = config.ping_interval * 3;
    let mut pinger = tokio::time::interval(config.ping_interval);
    // The first tick is at once: a batch left in flight by the last connection goes first.
    let mut reporter = tokio::time::interval(config.telemetry_interval);
    let mut resend = true;
    let mut unacknowledged_ticks = 0u32;
    loop {
        let message = tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { return Ok(()) };
                if deadline_passed(&request) {
                    continue;
                }
                Message::Binary(protocol::encode(&request).into())
            }
            changed = applied.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                let Some(revision) = *applied.borrow_and_update() else { continue };
                Message::Binary(protocol::encode(&DpToCp::Applied { revision }).into())
            }
            _ = pinger.tick() => Message::Ping(Vec::new().into()),
            _ = reporter.tick() => {
                // No acknowledgement for three intervals: send the batch in flight again.
                let in_flight = parts.link.telemetry.pending() > 0;
                unacknowledged_ticks = if in_flight { unacknowledged_ticks + 1 } else { 0 };
                if unacknowledged_ticks > 3 {
                    resend = true;
                    unacknowledged_ticks = 0;
                }
                let batch = parts.link.telemetry.next_batch(chrono::Utc::now(), resend);
                resend = false;
                let Some(batch) = batch else { continue };
                Message::Binary(protocol::encode(&DpToCp::Usage(batch)).into())
            }
        };
        tokio::time::timeout(send_timeout, sender.send(message))
            .await
            .map_err(|_| LinkError::SendTimeout(send_timeout))??;
    }
}

/// A request its waiter has given up on: never sent.
fn deadline_passed(request: &DpToCp) -> bool {
    let deadline = match request {
        DpToCp::Activate {
            deadline_unix_ms, ..
        }
        | DpToCp::Deactivate {
            deadline_unix_ms, ..
        } => *deadline_unix_ms,
        _ => return false,
    };
    chrono::Utc::now().timestamp_millis() >= deadline
}

/// Applies one message; returns the revision to acknowledge, if it moved.
fn apply(
    parts: &Parts,
    snapshot: &mut Option<SnapshotIntake>,
    message: CpToDp,
) -> Result<Option<i64>, LinkError> {
    match message {
        CpToDp::SnapshotBegin {
            revision,
            cluster_id,
        } => {
            tracing::info!(revision, %cluster_id, "receiving a snapshot");
            *snapshot = Some(SnapshotIntake::start(cluster_id)?);
            Ok(None)
        }
        CpToDp::SnapshotChunk { changes } => {
            let intake = snapshot
                .as_ref()
                .ok_or_else(|| LinkError::Protocol("snapshot chunk outside a snapshot".into()))?;
            intake.add(changes)?;
            Ok(None)
        }
        CpToDp::SnapshotEnd { revision } => {
            let intake = snapshot
                .take()
                .ok_or_else(|| LinkError::Protocol("snapshot end outside a snapshot".into()))?;
            let (builder, building) = intake.finish()?;
            parts.store.finish_snapshot(builder, revision);
            parts
                .link
                .snapshots_received
                .fetch_add(1, Ordering::Relaxed);
            parts.cache.changed();
            tracing::info!(
                revision,
                licenses = parts.store.load().license_count(),
                building_ms = building.as_millis() as u64,
                "snapshot applied"
            );
            Ok(Some(revision))
        }
        CpToDp::Deltas { revision, changes } => {
            if snapshot.is_some() {
                return Err(LinkError::Protocol("deltas inside a snapshot".into()));
            }
            parts.store.apply_deltas(revision, changes);
            parts.link.deltas_received.fetch_add(1, Ordering::Relaxed);
            parts.cache.changed();
            Ok(Some(revision))
        }
        CpToDp::ActivateResult { correlation_id, .. }
        | CpToDp::DeactivateResult { correlation_id, .. } => {
            parts.link.resolve(correlation_id, message);
            Ok(None)
        }
        CpToDp::UsageAck { sequence } => {
            parts.link.telemetry.acknowledge(sequence);
            Ok(None)
        }
        CpToDp::Rejected { reason } => Err(LinkError::Rejected(reason)),
    }
}
