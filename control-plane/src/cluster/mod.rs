//! The cluster listener (DESIGN §5): data planes connect over TLS 1.3 with client certificates
//! from the cluster CA, speak the websocket protocol of [`license_shared::protocol`], receive a
//! snapshot or the deltas after their revision, then every change as it commits, and forward
//! activations to the [`crate::authority`].

pub(crate) mod activity;
pub(crate) mod broadcast;
pub(crate) mod housekeeping;
pub(crate) mod revisions;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use license_shared::supervisor::{Stage, Supervisor};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// TLS handshakes in progress at once on the cluster listener.
const MAX_HANDSHAKES: usize = 32;

/// Settings of the cluster listener.
#[derive(Debug, Clone)]
pub(crate) struct ClusterConfig {
    pub tls: Arc<rustls::ServerConfig>,
    /// How often each side pings; a peer silent for three intervals is dropped.
    pub ping_interval: Duration,
}

/// Shared by every data-plane session.
#[derive(Debug, Clone)]
pub(crate) struct ClusterContext {
    pub pool: PgPool,
    /// Every change, read and encoded once for all sessions.
    pub deltas: tokio::sync::broadcast::Sender<Arc<broadcast::SharedDelta>>,
    pub ping_interval: Duration,
    /// Registry activity of every session, written in batches.
    pub activity: activity::Activity,
}

/// A bound cluster listener.
pub(crate) struct ClusterServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    context: ClusterContext,
}

impl std::fmt::Debug for ClusterServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterServer")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

impl ClusterServer {
    pub(crate) async fn bind(
        addr: SocketAddr,
        config: ClusterConfig,
        pool: PgPool,
        deltas: tokio::sync::broadcast::Sender<Arc<broadcast::SharedDelta>>,
        activity: activity::Activity,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the cluster listener to {addr}"))?;
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(config.tls),
            context: ClusterContext {
                pool,
                deltas,
                ping_interval: config.ping_interval,
                activity,
            },
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Accepts data planes until `stop` fires; each connection is a worker of `supervisor`
    /// (told to stop with the listener's stage). At most [`MAX_HANDSHAKES`] TLS handshakes
    /// run at once, so a flood of connections cannot take every core.
    pub(crate) async fn run(
        self,
        supervisor: Supervisor,
        stage: Stage,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "cluster listener accepting data planes");
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let acceptor = self.acceptor.clone();
                        let context = self.context.clone();
                        let handshakes = Arc::clone(&handshakes);
                        supervisor.worker(format!("cluster session {peer}"), stage, move |stop| {
                            session::serve(context, acceptor, handshakes, tcp, peer, stop)
                        });
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cluster listener failed to accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = stop.cancelled() => break,
            }
        }
        tracing::info!("cluster listener stopped");
        Ok(())
    }
}
