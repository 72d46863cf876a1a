//! [`DataPlane`]: loads the disk cache (serving it at once), binds the public and status
//! listeners, and keeps the cluster client running until told to stop. `main` and the tests
//! start a data plane the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::ServiceExt;
use axum::extract::Request;
use license_shared::supervisor::Supervisor;
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::api::status::{self, StatusState};
use crate::api::{self, PublicState};
use crate::cache::{self, CacheWriter};
use crate::cli::DataPlaneArgs;
use crate::cluster::{self, ClientConfig, Link};
use crate::store::Store;

/// A data plane that is bound and ready to serve.
#[derive(Debug)]
pub struct DataPlane {
    public: TcpListener,
    status: TcpListener,
    store: Arc<Store>,
    link: Arc<Link>,
    node_id: Uuid,
    args: DataPlaneArgs,
    client: ClientConfig,
}

impl DataPlane {
    pub async fn build(args: DataPlaneArgs) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&args.cache_dir).with_context(|| {
            format!("creating the cache directory {}", args.cache_dir.display())
        })?;
        let node_id = node_id(&args.cache_dir)?;
        let store = Arc::new(Store::new());
        let dir = args.cache_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || cache::load(&dir))
            .await
            .context("loading the disk cache")?;
        match loaded {
            Ok(Some(state)) => {
                store.replace(state);
                tracing::info!(
                    revision = store.revision(),
                    licenses = store.load().license_count(),
                    "serving the disk cache until the control plane is reached"
                );
            }
            Ok(None) => tracing::info!("no disk cache yet"),
            Err(error) => tracing::error!(%error, "ignoring a corrupt disk cache"),
        }
        let tls = license_shared::tls::client_config_from_files(
            &args.cluster.cluster_cert,
            &args.cluster.cluster_cert_key,
            &args.cluster.cluster_ca_cert,
        )
        .context("building the cluster TLS configuration")?;
        let client = ClientConfig {
            node_id,
            hostname: hostname(),
            control_plane: args.cluster.cluster_control_plane.clone(),
            server_name: args.cluster.server_name(),
            tls: Arc::new(tls),
            ping_interval: args.cluster.cluster_ping_interval,
            telemetry_interval: args.cluster.telemetry_interval,
        };
        let public = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding the public API to {}", args.listen))?;
        let status = TcpListener::bind(args.status_listen)
            .await
            .with_context(|| format!("binding the status API to {}", args.status_listen))?;
        Ok(Self {
            public,
            status,
            store,
            link: Arc::new(Link::new()),
            node_id,
            args,
            client,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn status_addr(&self) -> SocketAddr {
        self.status
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` resolves or a task fails, then stops everything in order
    /// (listeners, then the cluster client, then the disk cache, written once more) within
    /// `--shutdown-timeout`. Err when a task failed.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let supervisor = Supervisor::new();
        let cache = CacheWriter::new(self.args.cache_dir.clone(), self.store.clone());
        let public = api::service(
            PublicState {
                store: self.store.clone(),
                link: self.link.clone(),
                activation_timeout: self.args.activation_timeout,
            },
            self.args.max_body_bytes,
        );
        let status = status::router(StatusState {
            node_id: self.node_id,
            store: self.store.clone(),
            link: self.link.clone(),
        });
        tracing::info!(
            public = %self.public.local_addr()?, status = %self.status.local_addr()?,
            node_id = %self.node_id, "data plane listening"
        );
        let public_listener = self.public;
        supervisor.service("public listener", stage::LISTENERS, |stop| async move {
            let service = ServiceExt::<Request>::into_make_service(public);
            axum::serve(public_listener, service)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("the public listener failed")
        });
        let status_listener = self.status;
        supervisor.service("status listener", stage::LISTENERS, |stop| async move {
            axum::serve(status_listener, status)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .context("the status listener failed")
        });
        let (store, link, writer) = (self.store.clone(), self.link.clone(), cache.clone());
        supervisor.service("cluster client", stage::CLUSTER, |stop| {
            cluster::run(self.client, store, link, writer, stop)
        });
        supervisor.service("cache writer", stage::CACHE, |stop| cache.run(stop));
        let result = supervisor.run(shutdown, self.args.shutdown_timeout).await;
        tracing::info!("data plane stopped");
        result.map_err(anyhow::Error::from)
    }
}

/// The order in which the data plane's tasks stop.
mod stage {
    use license_shared::supervisor::Stage;

    /// Stop accepting, let in-flight requests finish.
    pub(super) const LISTENERS: Stage = 0;
    /// Then close the link to the control plane.
    pub(super) const CLUSTER: Stage = 1;
    /// Then write the disk cache a last time.
    pub(super) const CACHE: Stage = 2;
}

/// This node's id, kept in the cache directory so it survives restarts.
fn node_id(dir: &Path) -> anyhow::Result<Uuid> {
    let path = dir.join("node-id");
    if let Ok(raw) = std::fs::read_to_string(&path) {
        if let Ok(id) = raw.trim().parse() {
            return Ok(id);
        }
    }
    let id = Uuid::new_v4();
    std::fs::write(&path, id.to_string()).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
