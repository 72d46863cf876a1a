//! One data plane's connection: TLS, websocket, hello, then three tasks until either side
//! goes away: this one reads (requests, acknowledgements, the silence check), the [`feed`]
//! sends the initial sync and the live deltas, and the [`outbox`] owns the socket's sending
//! half (bounded queue, send timeout, pings). Requests to the authority run in the session's
//! own tasks ([`requests`]) and registry activity is noted in memory for the
//! [`crate::cluster::activity`] writer, so the reader never waits for the database. Anything malformed or unexpected closes this connection with a
//! logged reason; nothing here can bring down the control plane.

mod feed;
mod outbox;
mod requests;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use license_shared::protocol::{
    self, Codec, CpToDp, DpToCp, Hello, MAX_FRAME_BYTES, PROTOCOL_MAJOR,
};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use uuid::Uuid;

use super::ClusterContext;
use super::activity::Activity;
use crate::db::data_planes;
use outbox::Outgoing;
use requests::{AuthorityRequest, Requests};

/// Longest time for the TLS and websocket handshakes and for the hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
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
    #[error("the data plane did not take a message within {0:?}")]
    SendTimeout(Duration),
    #[error("the session's writer stopped")]
    WriterGone,
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

/// Serves one connection and logs how it ended. `handshakes` bounds the TLS handshakes in
/// progress at once, across the listener.
pub(super) async fn serve(
    context: ClusterContext,
    acceptor: TlsAcceptor,
    handshakes: std::sync::Arc<Semaphore>,
    tcp: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut node = None;
    let result = run(&context, acceptor, handshakes, tcp, peer, stop, &mut node).await;
    if let Some(node_id) = node {
        if let Err(error) = data_planes::disconnected(&context.pool, node_id).await {
            tracing::warn!(%error, %node_id, "cannot record the data plane's disconnection");
        }
    }
    match result {
        Ok(()) => tracing::info!(%peer, node_id = ?node, "data plane disconnected"),
        Err(error) => {
            tracing::warn!(%peer, node_id = ?node, reason = %error, "data plane connection closed")
        }
    }
    Ok(())
}

async fn handshake(
    acceptor: TlsAcceptor,
    handshakes: std::sync::Arc<Semaphore>,
    tcp: TcpStream,
) -> Result<Socket, SessionError> {
    let _permit = handshakes
        .acquire_owned()
        .await
        .map_err(|_| SessionError::Timeout("waiting for a handshake slot"))?;
    let tls = acceptor.accept(tcp).await.map_err(SessionError::Tls)?;
    tokio_tungstenite::accept_async_with_config(tls, Some(websocket_config()))
        .await
        .map_err(SessionError::Websocket)
}

async fn run(
    context: &ClusterContext,
    acceptor: TlsAcceptor,
    handshakes: std::sync::Arc<Semaphore>,
    tcp: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
    node: &mut Option<Uuid>,
) -> Result<(), SessionError> {
    let mut socket = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(acceptor, handshakes, tcp))
        .await
        .map_err(|_| SessionError::Timeout("the TLS and websocket handshakes"))??;
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
    data_planes::connected(&context.pool, &hello, &peer.ip().to_string()).await?;
    tracing::info!(
        %peer, node_id = %hello.node_id, hostname = %hello.hostname, version = %hello.version,
        revision = ?hello.revision, "data plane connected"
    );

    let (sink, mut stream) = socket.split();
    let (queue, outgoing) = mpsc::channel(outbox::QUEUE);
    let silence_limit = context.ping_interval * 3;
    let writer = AbortOnDropHandle::new(tokio::spawn(outbox::run(
        sink,
        outgoing,
        context.ping_interval,
        silence_limit,
    )));
    let feed = AbortOnDropHandle::new(tokio::spawn(feed::run(
        context.clone(),
        feed::Outbox(queue.clone()),
        hello.clone(),
        Codec::for_data_plane(hello.protocol_minor),
    )));
    let (activity, node_id) = (context.activity.clone(), hello.node_id);
    let mut requests = Requests::new(context.pool.clone(), hello.node_id, queue.clone());
    tokio::pin!(writer, feed);
    let mut silence_check = tokio::time::interval(context.ping_interval);
    let mut last_heard = Instant::now();

    let ended = loop {
        tokio::select! {
            incoming = stream.next() => {
                last_heard = Instant::now();
                let message = match incoming {
                    None => break Ok(()),
                    Some(Ok(message)) => message,
                    Some(Err(error)) => break Err(SessionError::Connection(error)),
                };
                match message {
                    Message::Binary(frame) => match protocol::decode::<DpToCp>(&frame) {
                        Ok(message) => {
                            if let Err(error) = handle(message, &mut requests, &activity, node_id) {
                                break Err(error);
                            }
                        }
                        Err(error) => {
                            break Err(SessionError::Protocol(format!("undecodable message: {error}")));
                        }
                    },
                    Message::Close(_) => break Ok(()),
                    Message::Ping(_) | Message::Pong(_) => {}
                    Message::Text(_) | Message::Frame(_) => {
                        break Err(SessionError::Protocol("text frames are not part of the protocol".into()));
                    }
                }
            }
            Some(_) = requests.tasks.join_next(), if !requests.tasks.is_empty() => {}
            ended = &mut writer => {
                return match ended {
                    Ok(result) => result.and(Err(SessionError::WriterGone)),
                    Err(error) => Err(SessionError::Encoding(format!("the writer stopped: {error}"))),
                };
            }
            ended = &mut feed => {
                match ended {
                    // The control plane is stopping (its revisions ended).
                    Ok(Ok(())) => break Ok(()),
                    Ok(Err(error)) => break Err(error),
                    Err(error) => break Err(SessionError::Encoding(format!("the feed stopped: {error}"))),
                }
            }
            _ = silence_check.tick() => {
                if last_heard.elapsed() > silence_limit {
                    // Not closed politely: the peer is not listening.
                    return Err(SessionError::Silent(last_heard.elapsed()));
                }
                activity.seen(node_id);
            }
            () = stop.cancelled() => break Ok(()),
        }
    };
    // Say why, then give the writer a moment to send it.
    let frame = ended.as_ref().err().map(|error| CloseFrame {
        code: CloseCode::Protocol,
        reason: error
            .to_string()
            .chars()
            .take(120)
            .collect::<String>()
            .into(),
    });
    if queue.try_send(Outgoing::Close(frame)).is_ok() {
        tokio::time::timeout(Duration::from_secs(1), &mut writer)
            .await
            .ok();
    }
    ended
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

/// Acts on one message from the data plane, without waiting for anything.
fn handle(
    message: DpToCp,
    requests: &mut Requests,
    activity: &Activity,
    node_id: Uuid,
) -> Result<(), SessionError> {
    match message {
        DpToCp::Hello(_) => return Err(SessionError::Protocol("hello sent twice".into())),
        DpToCp::Applied { revision } => {
            activity.applied(node_id, revision);
        }
        DpToCp::Activate {
            correlation_id,
            deadline_unix_ms,
            request,
        } => requests.authority(
            correlation_id,
            deadline_unix_ms,
            AuthorityRequest::Activate(request),
        ),
        DpToCp::Deactivate {
            correlation_id,
            deadline_unix_ms,
            license_key,
            device_id,
        } => requests.authority(
            correlation_id,
            deadline_unix_ms,
            AuthorityRequest::Deactivate {
                license_key,
                device_id,
            },
        ),
        DpToCp::Usage(batch) => requests.usage(batch),
    }
    Ok(())
}

/// Closes the websocket with the error as the reason, and hands the error back for logging
/// (before the socket is split).
async fn close(socket: &mut Socket, error: SessionError) -> SessionError {
    let reason: String = error.to_string().chars().take(120).collect();
    let frame = CloseFrame {
        code: CloseCode::Protocol,
        reason: reason.into(),
    };
    socket.close(Some(frame)).await.ok();
    error
}
