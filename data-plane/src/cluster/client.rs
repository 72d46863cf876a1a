//! The cluster client: connects to the control plane over mutually authenticated TLS 1.3 and
//! runs one [`super::connection`] at a time, reconnecting with jittered exponential backoff
//! when the link drops (resuming from its revision). A connection that panics is treated like
//! one that dropped: logged as an error, and the client reconnects, so a data plane never
//! keeps serving while silently going stale.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use rand::Rng;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use license_shared::protocol::MAX_FRAME_BYTES;

use super::connection::{self, LinkError, Socket};
use crate::cache::CacheWriter;
use crate::cluster::Link;
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

/// What one connection works with.
#[derive(Debug, Clone)]
pub(super) struct Parts {
    pub config: ClientConfig,
    pub store: Arc<Store>,
    pub link: Arc<Link>,
    pub cache: CacheWriter,
}

/// Keeps the data plane connected and in sync until `stop` fires.
pub async fn run(
    config: ClientConfig,
    store: Arc<Store>,
    link: Arc<Link>,
    cache: CacheWriter,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let parts = Parts {
        config,
        store,
        link,
        cache,
    };
    let mut backoff = BACKOFF_FIRST;
    loop {
        let started = Instant::now();
        let attempt = async {
            let socket = connect(&parts.config).await?;
            connection::run(&parts, socket).await
        };
        let result = tokio::select! {
            result = AssertUnwindSafe(attempt).catch_unwind() => result,
            () = stop.cancelled() => {
                parts.link.detach();
                return Ok(());
            }
        };
        parts.link.detach();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(
                control_plane = %parts.config.control_plane,
                reason = %error,
                "not connected to the control plane"
            ),
            Err(panic) => tracing::error!(
                control_plane = %parts.config.control_plane,
                panic = license_shared::error::panic_message(panic.as_ref()),
                "the cluster connection panicked; reconnecting"
            ),
        }
        if started.elapsed() > BACKOFF_CEILING {
            backoff = BACKOFF_FIRST;
        }
        // Full jitter: anywhere between half and all of the current backoff.
        let jittered = backoff.mul_f64(rand::rng().random_range(0.5..=1.0));
        tokio::select! {
            () = tokio::time::sleep(jittered) => {}
            () = stop.cancelled() => return Ok(()),
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
