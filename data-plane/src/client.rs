//! The cluster client: connects to the control plane over mutually authenticated TLS 1.3,
//! says hello with the revision it has, applies the snapshot or deltas it is sent, forwards
//! activation requests, and reconnects with jittered exponential backoff when the link drops,
//! resuming from its revision.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use license_shared::protocol::{
    self, CpToDp, DpToCp, Hello, MAX_FRAME_BYTES, PROTOCOL_MAJOR, PROTOCOL_MINOR,
};
use rand::Rng;
use rustls::pki_types::ServerName;
use std::sync::atomic::Ordering;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

use crate::cache::CacheWriter;
use crate::link::Link;
use crate::snapshot_intake::{IntakeError, SnapshotIntake};
use crate::store::Store;

/// Longest time for connecting, the TLS handshake and the websocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_CEILING: Duration = Duration::from_secs(10);

/// Everything the client needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub node_id: Uuid,
    pub hostname: String,
    pub control_plane: String,
    pub server_name: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub ping_interval: Duration,
    /// How often usage telemetry is reported.
    pub telemetry_interval: Duration,
}

type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
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
    #[error("building the snapshot failed: {0}")]
    Snapshot(#[from] IntakeError),
}

/// Keeps the data plane connected and in sync until `stopped` fires.
pub async fn run(
    config: ClientConfig,
    store: Arc<Store>,
    link: Arc<Link>,
    cache: CacheWriter,
    mut outbound: mpsc::Receiver<DpToCp>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            result = session(&config, &store, &link, &cache, &mut outbound) => result,
            _ = stopped.changed() => return,
        };
        link.set_connected(false);
        if let Err(error) = result {
            tracing::warn!(
                control_plane = %config.control_plane,
                reason = %error,
                "not connected to the control plane"
            );
        }
        if started.elapsed() > BACKOFF_CEILING {
            backoff = BACKOFF_FIRST;
        }
        // Full jitter: anywhere between half and all of the current backoff.
        let jittered = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
        tokio::select! {
            () = tokio::time::sleep(jittered) => {}
            _ = stopped.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_CEILING);
    }
}

async fn connect(config: &ClientConfig) -> Result<Socket, LinkError> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&config.control_plane))
        .await
        .map_err(|_| LinkError::Timeout("connecting"))?
        .map_err(|error| LinkError::Connect(config.control_plane.clone(), error))?;
    tcp.set_nodelay(true).ok();
    let server_name = ServerName::try_from(config.server_name.clone())
        .map_err(|_| LinkError::ServerName(config.server_name.clone()))?;
    let tls = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TlsConnector::from(config.tls.clone()).connect(server_name, tcp),
    )
    .await
    .map_err(|_| LinkError::Timeout("the TLS handshake"))?
    .map_err(LinkError::Tls)?;
    let url = format!("wss://{}/cluster/v1", config.server_name);
    let websocket = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let (socket, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::client_async_with_config(url, tls, Some(websocket)),
    )
    .await
    .map_err(|_| LinkError::Timeout("the websocket handshake"))?
    .map_err(LinkError::Websocket)?;
    Ok(socket)
}

async fn session(
    config: &ClientConfig,
    store: &Store,
    link: &Link,
    cache: &CacheWriter,
    outbound: &mut mpsc::Receiver<DpToCp>,
) -> Result<(), LinkError> {
    let mut socket = connect(config).await?;
    let hello = Hello {
        node_id: config.node_id,
        hostname: config.hostname.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_major: PROTOCOL_MAJOR,
        protocol_minor: PROTOCOL_MINOR,
        revision: store.has_state().then(|| store.revision()),
        cluster_id: store.load().cluster_id(),
    };
    send(&mut socket, &DpToCp::Hello(hello.clone())).await?;
    tracing::info!(
        control_plane = %config.control_plane, revision = ?hello.revision,
        "connected to the control plane"
    );
    link.connections.fetch_add(1, Ordering::Relaxed);
    link.set_connected(true);

    let mut snapshot: Option<SnapshotIntake> = None;
    // Where a snapshot's time goes on this side, for the log.
    let mut snapshot_decoding = Duration::ZERO;
    let mut pinger = tokio::time::interval(config.ping_interval);
    // The first tick is at once: batches left unacknowledged by the last session go first.
    let mut reporter = tokio::time::interval(config.telemetry_interval);
    let mut last_heard = Instant::now();
    let silence_limit = config.ping_interval * 3;
    loop {
        tokio::select! {
            incoming = socket.next() => {
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
                let decoded = decoding.elapsed();
                if snapshot.is_some() {
                    snapshot_decoding += decoded;
                }
                let in_snapshot = snapshot.is_some();
                let applied = apply(store, link, cache, &mut snapshot, message)?;
                if in_snapshot && snapshot.is_none() {
                    tracing::info!(
                        decoding_ms = snapshot_decoding.as_millis() as u64,
                        "snapshot received"
                    );
                    snapshot_decoding = Duration::ZERO;
                }
                if let Some(applied) = applied {
                    send(&mut socket, &DpToCp::Applied { revision: applied }).await?;
                }
            }
            request = outbound.recv() => {
                let Some(request) = request else { return Ok(()) };
                send(&mut socket, &request).await?;
            }
            _ = reporter.tick() => {
                for batch in link.telemetry.batches(chrono::Utc::now()) {
                    send(&mut socket, &DpToCp::Usage(batch)).await?;
                }
            }
            _ = pinger.tick() => {
                if last_heard.elapsed() > silence_limit {
                    return Err(LinkError::Silent(last_heard.elapsed()));
                }
                socket.send(Message::Ping(Vec::new().into())).await?;
            }
        }
    }
}

/// Applies one message; returns the revision to acknowledge, if it moved.
fn apply(
    store: &Store,
    link: &Link,
    cache: &CacheWriter,
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
            store.finish_snapshot(builder, revision);
            link.snapshots_received.fetch_add(1, Ordering::Relaxed);
            cache.changed();
            tracing::info!(
                revision,
                licenses = store.load().license_count(),
                building_ms = building.as_millis() as u64,
                "snapshot applied"
            );
            Ok(Some(revision))
        }
        CpToDp::Deltas { revision, changes } => {
            if snapshot.is_some() {
                return Err(LinkError::Protocol("deltas inside a snapshot".into()));
            }
            store.apply_deltas(revision, changes);
            link.deltas_received.fetch_add(1, Ordering::Relaxed);
            cache.changed();
            Ok(Some(revision))
        }
        CpToDp::ActivateResult { correlation_id, .. }
        | CpToDp::DeactivateResult { correlation_id, .. } => {
            link.resolve(correlation_id, message);
            Ok(None)
        }
        CpToDp::UsageAck { sequence } => {
            link.telemetry.acknowledge(sequence);
            Ok(None)
        }
        CpToDp::Rejected { reason } => Err(LinkError::Rejected(reason)),
    }
}

async fn send(socket: &mut Socket, message: &DpToCp) -> Result<(), LinkError> {
    socket
        .send(Message::Binary(protocol::encode(message).into()))
        .await?;
    Ok(())
}
