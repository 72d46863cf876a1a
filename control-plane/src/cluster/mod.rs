//! The cluster listener (DESIGN §5): data planes connect over TLS 1.3 with client certificates
//! from the cluster CA, speak the websocket protocol of [`license_shared::protocol`], receive a
//! snapshot or the deltas after their revision, then every change as it commits, and forward
//! activations to the [`crate::authority`].

mod housekeeping;
pub mod registry;
pub mod revisions;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// Settings of the cluster listener.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub tls: Arc<rustls::ServerConfig>,
    /// How often each side pings; a peer silent for three intervals is dropped.
    pub ping_interval: Duration,
}

/// Shared by every data-plane session.
#[derive(Debug, Clone)]
pub(crate) struct ClusterContext {
    pub pool: PgPool,
    pub revisions: watch::Receiver<i64>,
    pub ping_interval: Duration,
}

/// A bound cluster listener.
pub struct ClusterServer {
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
    pub async fn bind(
        addr: SocketAddr,
        config: ClusterConfig,
        pool: PgPool,
        revisions: watch::Receiver<i64>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the cluster listener to {addr}"))?;
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(config.tls),
            context: ClusterContext {
                pool,
                revisions,
                ping_interval: config.ping_interval,
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Accepts data planes until `stopped` fires; each connection runs in its own task.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        tracing::info!(addr = %self.local_addr(), "cluster listener accepting data planes");
        tokio::spawn(housekeeping::run(
            self.context.pool.clone(),
            stopped.clone(),
        ));
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let acceptor = self.acceptor.clone();
                        let context = self.context.clone();
                        let stopped = stopped.clone();
                        tokio::spawn(session::serve(context, acceptor, tcp, peer, stopped));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cluster listener failed to accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = stopped.changed() => break,
            }
        }
        tracing::info!("cluster listener stopped");
    }
}
