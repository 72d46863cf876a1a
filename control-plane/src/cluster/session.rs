//! One data plane's connection: TLS, websocket, hello, initial sync (snapshot or deltas), then
//! live deltas, activation requests and liveness pings until either side goes away. Anything
//! malformed or unexpected closes this connection with a logged reason; nothing here can bring
//! down the control plane.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::{SinkExt, StreamExt};
use license_shared::protocol::{
    self, Codec, CpToDp, DpToCp, Hello, MAX_FRAME_BYTES, PROTOCOL_MAJOR,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

use super::{ClusterContext, registry};
use crate::authority;
use crate::db::sync::{SnapshotReader, deltas_after};
use crate::db::usage;

/// Longest time for the TLS and websocket handshakes and for the hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Feed entries loaded per delta message.
const DELTA_BATCH: i64 = 1_000;

type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("websocket handshake failed: {0}")]
    Websocket(tokio_tungstenite::tungstenite::Error),
    #[error("timed out during {0}")]
    Timeout(&'static str),
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("connection lost: {0}")]
    Connection(tokio_tungstenite::tungstenite::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("encoding a snapshot chunk failed: {0}")]
    Encoding(String),
    #[error("data plane silent for {0:?}")]
    Silent(Duration),
}

impl From<tokio_tungstenite::tungstenite::Error> for SessionError {
    fn from(error: tokio_tungstenite::tungstenite::Error) -> Self {
        SessionError::Connection(error)
    }
}

pub(super) fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// Serves one connection and logs how it ended.
pub(super) async fn serve(
    context: ClusterContext,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    stopped: watch::Receiver<bool>,
) {
    let mut node = None;
    let result = run(&context, acceptor, tcp, peer, stopped, &mut node).await;
    if let Some(node_id) = node {
        if let Err(error) = registry::disconnected(&context.pool, node_id).await {
            tracing::warn!(%error, %node_id, "cannot record the data plane's disconnection");
        }
    }
    match result {
        Ok(()) => tracing::info!(%peer, node_id = ?node, "data plane disconnected"),
        Err(error) => {
            tracing::warn!(%peer, node_id = ?node, reason = %error, "data plane connection closed")
        }
    }
}

async fn run(
    context: &ClusterContext,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    mut stopped: watch::Receiver<bool>,
    node: &mut Option<uuid::Uuid>,
) -> Result<(), SessionError> {
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| SessionError::Timeout("the TLS handshake"))?
        .map_err(SessionError::Tls)?;
    let mut socket = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_async_with_config(tls, Some(websocket_config())),
    )
    .await
    .map_err(|_| SessionError::Timeout("the websocket handshake"))?
    .map_err(SessionError::Websocket)?;

    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, read_hello(&mut socket)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(error)) => return Err(close(&mut socket, error).await),
        Err(_) => return Err(SessionError::Timeout("the hello")),
    };
    if hello.protocol_major != PROTOCOL_MAJOR {
        let reason = format!(
            "protocol {}.{} is not supported; this control plane speaks {PROTOCOL_MAJOR}.x",
            hello.protocol_major, hello.protocol_minor
        );
        let rejected = protocol::encode(&CpToDp::Rejected {
            reason: reason.clone(),
        });
        socket.send(Message::Binary(rejected.into())).await.ok();
        return Err(close(&mut socket, SessionError::Protocol(reason)).await);
    }
    *node = Some(hello.node_id);
    registry::connected(&context.pool, &hello, &peer.ip().to_string()).await?;
    tracing::info!(
        %peer, node_id = %hello.node_id, hostname = %hello.hostname, version = %hello.version,
        revision = ?hello.revision, "data plane connected"
    );

    let mut revisions = context.revisions.clone();
    let codec = Codec::for_data_plane(hello.protocol_minor);
    let sent = initial_sync(context, &mut socket, &hello, codec).await?;
    // Whatever committed while the initial sync was being sent.
    let mut sent = send_deltas(context, &mut socket, sent, codec).await?;
    let (results, mut pending_results) = mpsc::channel::<Vec<u8>>(64);
    let applied = registry::spawn_applied_writer(context.pool.clone(), hello.node_id);
    let mut pinger = tokio::time::interval(context.ping_interval);
    let mut last_heard = Instant::now();
    let silence_limit = context.ping_interval * 3;

    loop {
        tokio::select! {
            changed = revisions.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                if *revisions.borrow_and_update() > sent {
                    sent = send_deltas(context, &mut socket, sent, codec).await?;
                }
            }
            frame = pending_results.recv() => {
                if let Some(frame) = frame {
                    socket.send(Message::Binary(frame.into())).await?;
                }
            }
            incoming = socket.next() => {
                last_heard = Instant::now();
                let message = match incoming {
                    None => return Ok(()),
                    Some(message) => message?,
                };
                match message {
                    Message::Binary(frame) => match protocol::decode::<DpToCp>(&frame) {
                        Ok(message) => {
                            if let Err(error) = handle(context, hello.node_id, message, &results, &applied).await {
                                return Err(close(&mut socket, error).await);
                            }
                        }
                        Err(error) => {
                            let error = SessionError::Protocol(format!("undecodable message: {error}"));
                            return Err(close(&mut socket, error).await);
                        }
                    },
                    Message::Close(_) => return Ok(()),
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Text(_) | Message::Frame(_) => {
                        let error = SessionError::Protocol("text frames are not part of the protocol".into());
                        return Err(close(&mut socket, error).await);
                    }
                }
            }
            _ = pinger.tick() => {
                if last_heard.elapsed() > silence_limit {
                    return Err(SessionError::Silent(last_heard.elapsed()));
                }
                socket.send(Message::Ping(Vec::new().into())).await?;
                registry::seen(&context.pool, hello.node_id).await.ok();
            }
            _ = stopped.changed() => {
                socket.close(None).await.ok();
                return Ok(());
            }
        }
    }
}

async fn read_hello(socket: &mut Socket) -> Result<Hello, SessionError> {
    loop {
        let message = socket
            .next()
            .await
            .ok_or_else(|| SessionError::Protocol("closed before saying hello".into()))??;
        match message {
            Message::Binary(frame) => {
                return match protocol::decode::<DpToCp>(&frame) {
                    Ok(DpToCp::Hello(hello)) => Ok(hello),
                    Ok(_) => Err(SessionError::Protocol(
                        "the first message must be hello".into(),
                    )),
                    Err(error) => Err(SessionError::Protocol(format!(
                        "undecodable hello: {error}"
                    ))),
                };
            }
            Message::Ping(_) | Message::Pong(_) => {}
            _ => return Err(SessionError::Protocol("expected a binary hello".into())),
        }
    }
}

/// Sends what the data plane lacks; returns the revision it will have once applied.
async fn initial_sync(
    context: &ClusterContext,
    socket: &mut Socket,
    hello: &Hello,
    codec: Codec,
) -> Result<i64, SessionError> {
    let committed = crate::db::revision::current(&context.pool).await?;
    let cluster_id = crate::db::revision::cluster_id(&context.pool).await?;
    match hello.revision {
        // Resume: the data plane's state comes from this database, which still has the
        // history after its revision.
        Some(revision) if revision <= committed && hello.cluster_id == Some(cluster_id) => {
            send_deltas(context, socket, revision, codec).await
        }
        _ => send_snapshot(context, socket, cluster_id, codec).await,
    }
}

async fn send_snapshot(
    context: &ClusterContext,
    socket: &mut Socket,
    cluster_id: uuid::Uuid,
    codec: Codec,
) -> Result<i64, SessionError> {
    let started = Instant::now();
    let mut reader = SnapshotReader::open(&context.pool).await?;
    let revision = reader.revision();
    let mut bytes = send(
        socket,
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
    let producer = tokio::spawn(async move {
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
    });
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
        socket.send(Message::Binary(frame.into())).await?;
    }
    let reading = producer.await.unwrap_or_default();
    bytes += send(socket, &CpToDp::SnapshotEnd { revision }).await?;
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
    socket: &mut Socket,
    mut after: i64,
    codec: Codec,
) -> Result<i64, SessionError> {
    while let Some(batch) = deltas_after(&context.pool, after, DELTA_BATCH).await? {
        let (revision, count) = (batch.revision, batch.changes.len());
        let message = CpToDp::Deltas {
            revision,
            changes: batch.changes,
        };
        let bytes = send_with(socket, &message, codec).await?;
        tracing::debug!(after, revision, count, bytes, "deltas sent");
        after = revision;
        if batch.last {
            break;
        }
    }
    Ok(after)
}

/// Sends one message that any data plane reads; returns its size on the wire.
async fn send(socket: &mut Socket, message: &CpToDp) -> Result<usize, SessionError> {
    send_with(socket, message, Codec::Deflate).await
}

/// Sends one message compressed with `codec` (when compressed); returns its size on the wire.
async fn send_with(
    socket: &mut Socket,
    message: &CpToDp,
    codec: Codec,
) -> Result<usize, SessionError> {
    let frame = protocol::encode_with(message, codec);
    let size = frame.len();
    socket.send(Message::Binary(frame.into())).await?;
    Ok(size)
}

/// Acts on one message from the data plane. Requests to the authority run in their own task
/// and answer through `results`, so a slow database never stalls the stream of deltas.
async fn handle(
    context: &ClusterContext,
    node_id: uuid::Uuid,
    message: DpToCp,
    results: &mpsc::Sender<Vec<u8>>,
    applied: &watch::Sender<i64>,
) -> Result<(), SessionError> {
    match message {
        DpToCp::Hello(_) => Err(SessionError::Protocol("hello sent twice".into())),
        DpToCp::Applied { revision } => {
            applied.send_replace(revision);
            Ok(())
        }
        DpToCp::Activate {
            correlation_id,
            deadline_ms,
            request,
        } => {
            let (pool, results) = (context.pool.clone(), results.clone());
            tokio::spawn(async move {
                let deadline = Duration::from_millis(deadline_ms);
                let decided =
                    tokio::time::timeout(deadline, authority::activate(&pool, request, Utc::now()))
                        .await;
                if let Ok(outcome) = decided {
                    let answer = CpToDp::ActivateResult {
                        correlation_id,
                        outcome,
                    };
                    results.send(protocol::encode(&answer)).await.ok();
                }
            });
            Ok(())
        }
        DpToCp::Deactivate {
            correlation_id,
            deadline_ms,
            license_key,
            device_id,
        } => {
            let (pool, results) = (context.pool.clone(), results.clone());
            tokio::spawn(async move {
                let deadline = Duration::from_millis(deadline_ms);
                let decided = tokio::time::timeout(
                    deadline,
                    authority::deactivate(&pool, &license_key, &device_id),
                )
                .await;
                if let Ok(outcome) = decided {
                    let answer = CpToDp::DeactivateResult {
                        correlation_id,
                        outcome,
                    };
                    results.send(protocol::encode(&answer)).await.ok();
                }
            });
            Ok(())
        }
        DpToCp::Usage(batch) => {
            // Written off the session's path; the acknowledgement follows the commit.
            let (pool, results) = (context.pool.clone(), results.clone());
            tokio::spawn(async move {
                match record_usage(&pool, node_id, &batch).await {
                    Ok(()) => {
                        let ack = CpToDp::UsageAck {
                            sequence: batch.sequence,
                        };
                        results.send(protocol::encode(&ack)).await.ok();
                    }
                    // Not acknowledged: the data plane sends the batch again.
                    Err(error) => tracing::warn!(%error, %node_id, "telemetry not recorded"),
                }
            });
            Ok(())
        }
    }
}

/// Records a telemetry batch once.
async fn record_usage(
    pool: &sqlx::PgPool,
    node_id: uuid::Uuid,
    batch: &license_shared::protocol::UsageBatch,
) -> sqlx::Result<()> {
    usage::record_batch(
        pool,
        node_id,
        batch.sequence,
        &batch.requests,
        &batch.validated,
    )
    .await?;
    Ok(())
}

/// Closes the websocket with the error as the reason, and hands the error back for logging.
async fn close(socket: &mut Socket, error: SessionError) -> SessionError {
    let reason: String = error.to_string().chars().take(120).collect();
    let frame = CloseFrame {
        code: CloseCode::Protocol,
        reason: reason.into(),
    };
    socket.close(Some(frame)).await.ok();
    error
}
