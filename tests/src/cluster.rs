//! [`TestCluster`]: a real cluster for end-to-end tests with the tests' settings (pings every
//! second, short activation deadlines and telemetry intervals): a fresh database, the shared
//! [`Cluster`] of control-plane and data-plane processes, and typed helpers to drive and
//! observe them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use reqwest::Method;
use serde_json::{Value, json};
use test_support::cluster::{Cluster, Settings};

use crate::{pg, process};

pub use test_support::cluster::{ControlPlane, DataPlane};

/// The name the tests have always used for a data plane.
pub type DataPlaneProcess = DataPlane;

/// The bootstrap admin token of every test control plane.
pub const ADMIN_TOKEN: &str = "cluster-test-admin-token";
/// How long a process gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A test's cluster: its database and its processes' files.
#[derive(Debug)]
pub struct TestCluster {
    pub dir: PathBuf,
    pub certs: PathBuf,
    /// The database the next control plane uses.
    pub database_url: String,
    pub client: reqwest::Client,
    cluster: Cluster,
    next_name: usize,
}

impl TestCluster {
    /// A fresh database and a certificate set; no processes yet.
    pub async fn new() -> anyhow::Result<Self> {
        let database_url = pg::fresh_database().await?;
        let dir =
            std::env::temp_dir().join(format!("ls-cluster-{}", uuid::Uuid::new_v4().simple()));
        let settings = Settings {
            admin_token: ADMIN_TOKEN.to_owned(),
            ready_timeout: READY_TIMEOUT,
            control_plane_flags: strings(&["--cluster-ping-interval", "1s"]),
            data_plane_flags: strings(&[
                "--cluster-ping-interval",
                "1s",
                "--activation-timeout",
                "3s",
                "--telemetry-interval",
                "300ms",
            ]),
            control_plane_log: "info".to_owned(),
            data_plane_log: "info".to_owned(),
        };
        let cluster = Cluster::new(process::binaries()?, dir, settings)?;
        Ok(Self {
            dir: cluster.dir.clone(),
            certs: cluster.certs.clone(),
            database_url,
            client: cluster.client.clone(),
            cluster,
            next_name: 0,
        })
    }

    /// The shared cluster machinery underneath.
    pub fn processes(&self) -> &Cluster {
        &self.cluster
    }

    pub fn cert(&self, name: &str) -> String {
        self.cluster.cert(name)
    }

    fn name(&mut self, prefix: &str) -> String {
        self.next_name += 1;
        format!("{prefix}-{}", self.next_name)
    }

    /// Starts a control plane on [`TestCluster::database_url`] and waits until it is ready.
    pub async fn start_control_plane(&mut self) -> anyhow::Result<ControlPlane> {
        let name = self.name("cp");
        self.cluster
            .start_control_plane(&name, &self.database_url)
            .await
    }

    /// Restarts a stopped control plane on the ports it had.
    pub async fn restart_control_plane(&mut self, cp: &mut ControlPlane) -> anyhow::Result<()> {
        self.cluster.restart_control_plane(cp).await
    }

    /// Starts a data plane connected to `cp` and waits until it serves.
    pub async fn start_data_plane(&mut self, cp: &ControlPlane) -> anyhow::Result<DataPlane> {
        let name = self.name("dp");
        self.cluster.start_data_plane(&name, cp).await
    }

    /// Arguments for a data plane of `cp` presenting `cert` (`<cert>.crt`/`.key`).
    pub fn data_plane_args(&self, cp: &ControlPlane, cache_dir: &Path, cert: &str) -> Vec<String> {
        self.cluster
            .data_plane_args(cp.cluster_addr, cache_dir, cert)
    }

    /// Starts a data plane with explicit arguments; waits until it reports its addresses, not
    /// until it is ready.
    pub async fn spawn_data_plane(
        &self,
        name: &str,
        args: Vec<String>,
    ) -> anyhow::Result<DataPlane> {
        self.cluster.spawn_data_plane(name, args).await
    }

    /// Restarts a stopped data plane with the same ports, arguments and cache.
    pub async fn restart_data_plane(&self, dp: &mut DataPlane) -> anyhow::Result<()> {
        self.cluster.restart_data_plane(dp).await
    }

    /// An admin request to `cp`.
    pub fn admin(&self, cp: &ControlPlane, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.cluster.admin(cp, method, path)
    }

    /// Creates a product, a customer and a license with `fields`, through `cp`.
    pub async fn create_license(&self, cp: &ControlPlane, fields: Value) -> anyhow::Result<Value> {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let product: Value = self
            .admin(cp, Method::POST, "/api/products")
            .json(&json!({ "code": format!("p-{suffix}"), "name": "Product" }))
            .send()
            .await?
            .json()
            .await?;
        let customer: Value = self
            .admin(cp, Method::POST, "/api/customers")
            .json(&json!({ "email": format!("c-{suffix}@example.com") }))
            .send()
            .await?
            .json()
            .await?;
        let mut body = json!({ "productId": product["id"], "customerId": customer["id"] });
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        let response = self
            .admin(cp, Method::POST, "/api/licenses")
            .json(&body)
            .send()
            .await?;
        if response.status() != 201 {
            bail!("creating a license failed: {}", response.text().await?);
        }
        Ok(response.json().await?)
    }

    /// `POST /api/licenses/verify` on a data plane: (HTTP status, body).
    pub async fn verify(&self, dp: &DataPlane, key: &str) -> anyhow::Result<(u16, Value)> {
        let (status, body) = self.cluster.verify(&dp.public_url, key).await?;
        Ok((status, serde_json::from_slice(&body)?))
    }

    /// A data plane's `/status`.
    pub async fn status(&self, dp: &DataPlane) -> anyhow::Result<Value> {
        self.get_json(&format!("{}/status", dp.status_url)).await
    }

    /// A control plane's `/status` (its database's newest revision under `database`).
    pub async fn control_plane_status(&self, cp: &ControlPlane) -> anyhow::Result<Value> {
        self.get_json(&format!("{}/status", cp.admin_url)).await
    }

    async fn get_json(&self, url: &str) -> anyhow::Result<Value> {
        Ok(self.client.get(url).send().await?.json().await?)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}
