//! [`Application`]: connects to the database, applies migrations, binds the admin listener and
//! serves until told to stop. `main` and the tests start the control plane the same way.
//!
//! Every long-lived task is a service of one [`Supervisor`]: SIGTERM/SIGINT or any of them
//! failing stops them all within `--shutdown-timeout`, listeners first (the admin API, the
//! cluster listener and its sessions), then the revision follower and housekeeping; the
//! database pool closes last.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use license_shared::supervisor::Supervisor;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::api::{self, AppState, common::auth::AuthConfig};
use crate::cli::{ClusterArgs, ServeArgs};
use crate::cluster::activity::Activity;
use crate::cluster::{self, ClusterConfig, ClusterServer, broadcast, housekeeping, revisions};
use crate::db;

/// A control plane that is bound and ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    pool: PgPool,
    cluster: Option<ClusterServer>,
    supervisor: Supervisor,
    shutdown_timeout: Duration,
}

/// The order in which the control plane's tasks stop.
mod stage {
    use license_shared::supervisor::Stage;

    /// Stop accepting; let in-flight requests and sessions end.
    pub(super) const LISTENERS: Stage = 0;
    /// Then what the listeners relied on.
    pub(super) const BACKGROUND: Stage = 1;
}

impl Application {
    /// Connects (retrying for `--db-startup-timeout`), migrates and binds `--admin-listen`
    /// (port 0 picks a free port; see [`Application::local_addr`]).
    pub async fn build(args: ServeArgs) -> anyhow::Result<Self> {
        let pool = db::connect(&args.database).await?;
        db::migrate(&pool).await?;
        if args.admin_token.is_none() {
            tracing::warn!(
                "no ADMIN_TOKEN set: only tokens made with `control-plane tokens create` work"
            );
        }
        let configured_key = args
            .signing_key
            .as_deref()
            .map(crate::signing::load_key_file)
            .transpose()?;
        let signing_key = db::signing_keys::ensure_active(&pool, configured_key)
            .await
            .context("settling the active signing key")?;
        let state = AppState {
            db: pool.clone(),
            auth: Arc::new(AuthConfig::new(args.admin_token.as_deref())),
            signing_key: Arc::new(signing_key),
            trusted_issuers: Arc::new(crate::signing::load_trusted_keys(
                &args.trusted_issuer_keys,
            )?),
        };
        let router = api::app(state, args.max_body_bytes);
        let listener = TcpListener::bind(args.admin_listen)
            .await
            .with_context(|| format!("binding the admin API to {}", args.admin_listen))?;
        let supervisor = Supervisor::new();
        let cluster = match cluster_config(&args.cluster)? {
            Some(config) => {
                let revisions = revisions::follow(pool.clone(), &supervisor, stage::BACKGROUND)
                    .await
                    .context("following revisions")?;
                let (deltas, _) = tokio::sync::broadcast::channel(broadcast::CAPACITY);
                let (reader, sender) = (pool.clone(), deltas.clone());
                supervisor.service("change broadcaster", stage::BACKGROUND, |stop| {
                    broadcast::run(reader, revisions, sender, stop)
                });
                let activity = Activity::default();
                let (writer, noted) = (pool.clone(), activity.clone());
                supervisor.service("registry writer", stage::BACKGROUND, |stop| {
                    cluster::activity::run(writer, noted, stop)
                });
                let server = ClusterServer::bind(
                    args.cluster.cluster_listen,
                    config,
                    pool.clone(),
                    deltas,
                    activity,
                )
                .await?;
                Some(server)
            }
            None => {
                tracing::warn!(
                    "no cluster certificates (--cluster-cert, --cluster-cert-key, \
                     --cluster-ca-cert): data planes cannot connect"
                );
                None
            }
        };
        Ok(Self {
            listener,
            router,
            pool,
            cluster,
            supervisor,
            shutdown_timeout: args.shutdown_timeout,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Where data planes connect, when the cluster listener runs.
    pub fn cluster_addr(&self) -> Option<SocketAddr> {
        self.cluster.as_ref().map(ClusterServer::local_addr)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` resolves or a task fails, then stops every task in order
    /// within `--shutdown-timeout` and closes the pool. Err when a task failed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr();
        tracing::info!(%addr, "admin API listening");
        let supervisor = self.supervisor;
        let (listener, router) = (self.listener, self.router);
        supervisor.service("admin listener", stage::LISTENERS, |stop| async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("the admin API server failed")
        });
        if let Some(cluster) = self.cluster {
            let pool = self.pool.clone();
            supervisor.service("housekeeping", stage::BACKGROUND, |stop| {
                housekeeping::run(pool, stop)
            });
            let sessions = supervisor.clone();
            supervisor.service("cluster listener", stage::LISTENERS, |stop| {
                cluster.run(sessions, stage::LISTENERS, stop)
            });
        }
        let result = supervisor.run(shutdown, self.shutdown_timeout).await;
        self.pool.close().await;
        tracing::info!("control plane stopped");
        result.map_err(anyhow::Error::from)
    }
}

/// The cluster listener's TLS settings, when its certificates are configured.
fn cluster_config(args: &ClusterArgs) -> anyhow::Result<Option<ClusterConfig>> {
    let (Some(cert), Some(key), Some(ca)) = (
        &args.cluster_cert,
        &args.cluster_cert_key,
        &args.cluster_ca_cert,
    ) else {
        return Ok(None);
    };
    let tls = license_shared::tls::server_config_from_files(cert, key, ca)
        .context("building the cluster listener's TLS configuration")?;
    Ok(Some(ClusterConfig {
        tls: Arc::new(tls),
        ping_interval: args.cluster_ping_interval,
    }))
}
