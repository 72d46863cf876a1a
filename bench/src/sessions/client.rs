//! One lightweight data-plane session: the real protocol over the real mTLS websocket, without
//! a data plane behind it. It says hello with its own node id and no state, takes the snapshot
//! it is sent, acknowledges everything it applies with `Applied`, answers the control plane's
//! pings (tungstenite queues the pong and sends it with the next read), and reports when it
//! has synced and when each delta arrived. It keeps no licenses: a thousand of them fit in one
//! runtime of the benchmark runner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use license_shared::protocol::{
    self, CpToDp, DpToCp, Hello, MAX_FRAME_BYTES, PROTOCOL_MAJOR, PROTOCOL_MINOR,
};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

/// Longest time for connecting and each handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// The name the control plane's development certificate carries.
const SERVER_NAME: &str = "localhost";

type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// What every session needs.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub(crate) cluster_addr: SocketAddr,
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

/// What a session tells the measuring side.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// Session `session` has applied its snapshot, up to `revision`.
    Synced { session: usize, revision: i64 },
    /// Session `session` received deltas up to `revision` at `at`.
    Delta {
        session: usize,
        revision: i64,
        at: Instant,
    },
    /// Session `session` ended (its error is logged by the runner).
    Ended { session: usize },
}

/// Runs session number `session` until the connection ends or `events` is dropped.
pub(crate) async fn run(
    session: usize,
    config: SessionConfig,
    events: mpsc::UnboundedSender<Event>,
) -> anyhow::Result<()> {
    let outcome = speak(session, &config, &events).await;
    let _ = events.send(Event::Ended { session });
    outcome
}

async fn speak(
    session: usize,
    config: &SessionConfig,
    events: &mpsc::UnboundedSender<Event>,
) -> anyhow::Result<()> {
    let mut socket = connect(config).await?;
    let hello = Hello {
        node_id: Uuid::new_v4(),
        hostname: format!("bench-session-{session}"),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_major: PROTOCOL_MAJOR,
        protocol_minor: PROTOCOL_MINOR,
        revision: None,
        cluster_id: None,
    };
    send(&mut socket, &DpToCp::Hello(hello)).await?;
    while let Some(message) = socket.next().await {
        let frame = match message.context("reading from the control plane")? {
            Message::Binary(frame) => frame,
            // A ping's pong goes out with the next read.
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(frame) => bail!("closed by the control plane: {frame:?}"),
            Message::Text(_) | Message::Frame(_) => bail!("unexpected text frame"),
        };
        let at = Instant::now();
        match protocol::decode::<CpToDp>(&frame).context("an undecodable message")? {
            CpToDp::SnapshotEnd { revision } => {
                send(&mut socket, &DpToCp::Applied { revision }).await?;
                if events.send(Event::Synced { session, revision }).is_err() {
                    break;
                }
            }
            CpToDp::Deltas { revision, .. } => {
                if events
                    .send(Event::Delta {
                        session,
                        revision,
                        at,
                    })
                    .is_err()
                {
                    break;
                }
                send(&mut socket, &DpToCp::Applied { revision }).await?;
            }
            CpToDp::Rejected { reason } => bail!("rejected: {reason}"),
            CpToDp::SnapshotBegin { .. }
            | CpToDp::SnapshotChunk { .. }
            | CpToDp::ActivateResult { .. }
            | CpToDp::DeactivateResult { .. }
            | CpToDp::UsageAck { .. } => {}
        }
    }
    socket.close(None).await.ok();
    Ok(())
}

/// TCP, TLS 1.3 with the data-plane certificate, the websocket upgrade.
async fn connect(config: &SessionConfig) -> anyhow::Result<Socket> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(config.cluster_addr))
        .await
        .context("connecting: timed out")?
        .context("connecting")?;
    tcp.set_nodelay(true).ok();
    let name = ServerName::try_from(SERVER_NAME).context("the server name")?;
    let tls = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TlsConnector::from(config.tls.clone()).connect(name, tcp),
    )
    .await
    .context("the TLS handshake: timed out")?
    .context("the TLS handshake")?;
    let websocket = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let (socket, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::client_async_with_config(
            format!("wss://{SERVER_NAME}/cluster/v1"),
            tls,
            Some(websocket),
        ),
    )
    .await
    .context("the websocket handshake: timed out")?
    .context("the websocket handshake")?;
    Ok(socket)
}

async fn send(socket: &mut Socket, message: &DpToCp) -> anyhow::Result<()> {
    socket
        .send(Message::Binary(protocol::encode(message).into()))
        .await
        .context("sending to the control plane")
}
