//! [`TestCluster`]: a real cluster for end-to-end tests: a fresh database, development
//! certificates from `control-plane gen-cert`, control-plane and data-plane processes on free
//! loopback ports talking mTLS, and typed helpers to drive and observe them.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::pg;
use crate::process::{Process, binaries, free_port, wait_for};

/// The bootstrap admin token of every test control plane.
pub const ADMIN_TOKEN: &str = "cluster-test-admin-token";
/// How long a process gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A control plane process.
#[derive(Debug)]
pub struct ControlPlane {
    pub process: Process,
    pub admin_url: String,
    pub cluster_port: u16,
    args: Vec<String>,
}

/// A data plane process.
#[derive(Debug)]
pub struct DataPlaneProcess {
    pub process: Process,
    pub public_url: String,
    pub status_url: String,
    pub cache_dir: PathBuf,
    args: Vec<String>,
}

impl DataPlaneProcess {
    /// Points the data plane at another control plane (takes effect on restart).
    pub fn point_to(&mut self, cp: &ControlPlane) {
        if let Some(position) = self
            .args
            .iter()
            .position(|arg| arg == "--cluster-control-plane")
        {
            self.args[position + 1] = format!("127.0.0.1:{}", cp.cluster_port);
        }
    }
}

/// Where a test cluster keeps its files.
#[derive(Debug)]
pub struct TestCluster {
    pub dir: PathBuf,
    pub certs: PathBuf,
    pub database_url: String,
    pub client: reqwest::Client,
    next_name: usize,
}

impl TestCluster {
    /// A fresh database and a certificate set; no processes yet.
    pub async fn new() -> anyhow::Result<Self> {
        let database_url = pg::fresh_database().await?;
        let dir =
            std::env::temp_dir().join(format!("ls-cluster-{}", uuid::Uuid::new_v4().simple()));
        let certs = dir.join("certs");
        std::fs::create_dir_all(&dir)?;
        let output = Command::new(binaries()?.join("control-plane"))
            .args(["gen-cert", "--out-dir"])
            .arg(&certs)
            .output()
            .context("running control-plane gen-cert")?;
        if !output.status.success() {
            bail!(
                "gen-cert failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(Self {
            dir,
            certs,
            database_url,
            client: reqwest::Client::new(),
            next_name: 0,
        })
    }

    pub fn cert(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    fn name(&mut self, prefix: &str) -> String {
        self.next_name += 1;
        format!("{prefix}-{}", self.next_name)
    }

    /// Starts a control plane and waits until it is ready.
    pub async fn start_control_plane(&mut self) -> anyhow::Result<ControlPlane> {
        let name = self.name("cp");
        let admin_port = free_port();
        let cluster_port = free_port();
        let args: Vec<String> = [
            "serve",
            "--database-url",
            &self.database_url,
            "--admin-listen",
            &format!("127.0.0.1:{admin_port}"),
            "--admin-token",
            ADMIN_TOKEN,
            "--cluster-listen",
            &format!("127.0.0.1:{cluster_port}"),
            "--cluster-cert",
            &self.cert("cluster-cp.crt"),
            "--cluster-cert-key",
            &self.cert("cluster-cp.key"),
            "--cluster-ca-cert",
            &self.cert("cluster-ca.crt"),
            "--cluster-ping-interval",
            "1s",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let process = Process::start(&name, "control-plane", &args, &[], &self.dir)?;
        let cp = ControlPlane {
            process,
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            cluster_port,
            args,
        };
        self.wait_ready(&format!("{}/status/ready", cp.admin_url), &cp.process)
            .await?;
        Ok(cp)
    }

    /// Restarts a stopped control plane with the same ports.
    pub async fn restart_control_plane(&mut self, cp: &mut ControlPlane) -> anyhow::Result<()> {
        cp.process = Process::start(
            &cp.process.name.clone(),
            "control-plane",
            &cp.args,
            &[],
            &self.dir,
        )?;
        self.wait_ready(&format!("{}/status/ready", cp.admin_url), &cp.process)
            .await
    }

    /// Starts a data plane connected to `cp` and waits until it serves.
    pub async fn start_data_plane(
        &mut self,
        cp: &ControlPlane,
    ) -> anyhow::Result<DataPlaneProcess> {
        let name = self.name("dp");
        let cache_dir = self.dir.join(&name);
        let args = self.data_plane_args(cp.cluster_port, &cache_dir, "cluster-dp");
        let dp = self.spawn_data_plane(&name, args, cache_dir)?;
        self.wait_ready(&format!("{}/status/ready", dp.status_url), &dp.process)
            .await?;
        Ok(dp)
    }

    /// Arguments for a data plane of `cp_port` presenting `cert` (`<cert>.crt`/`.key`).
    pub fn data_plane_args(
        &self,
        cp_port: u16,
        cache_dir: &std::path::Path,
        cert: &str,
    ) -> Vec<String> {
        let public_port = free_port();
        let status_port = free_port();
        [
            "--cluster-control-plane",
            &format!("127.0.0.1:{cp_port}"),
            "--cluster-server-name",
            "localhost",
            "--cluster-cert",
            &self.cert(&format!("{cert}.crt")),
            "--cluster-cert-key",
            &self.cert(&format!("{cert}.key")),
            "--cluster-ca-cert",
            &self.cert("cluster-ca.crt"),
            "--listen",
            &format!("127.0.0.1:{public_port}"),
            "--status-listen",
            &format!("127.0.0.1:{status_port}"),
            "--cache-dir",
            &cache_dir.display().to_string(),
            "--cluster-ping-interval",
            "1s",
            "--activation-timeout",
            "3s",
            "--telemetry-interval",
            "300ms",
        ]
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    /// Starts a data plane with explicit arguments, without waiting.
    pub fn spawn_data_plane(
        &self,
        name: &str,
        args: Vec<String>,
        cache_dir: PathBuf,
    ) -> anyhow::Result<DataPlaneProcess> {
        let port_of = |flag: &str| {
            args.iter()
                .position(|arg| arg == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
                .unwrap_or_default()
        };
        let public_url = format!("http://{}", port_of("--listen"));
        let status_url = format!("http://{}", port_of("--status-listen"));
        let process = Process::start(name, "data-plane", &args, &[], &self.dir)?;
        Ok(DataPlaneProcess {
            process,
            public_url,
            status_url,
            cache_dir,
            args,
        })
    }

    /// Restarts a stopped data plane with the same arguments and cache.
    pub async fn restart_data_plane(&self, dp: &mut DataPlaneProcess) -> anyhow::Result<()> {
        dp.process = Process::start(
            &dp.process.name.clone(),
            "data-plane",
            &dp.args,
            &[],
            &self.dir,
        )?;
        self.wait_ready(&format!("{}/status/ready", dp.status_url), &dp.process)
            .await
    }

    async fn wait_ready(&self, url: &str, process: &Process) -> anyhow::Result<()> {
        let client = self.client.clone();
        let url = url.to_owned();
        wait_for(
            &format!("{} to be ready", process.name),
            READY_TIMEOUT,
            || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    client
                        .get(&url)
                        .send()
                        .await
                        .is_ok_and(|response| response.status() == 200)
                }
            },
        )
        .await
        .with_context(|| format!("log of {}:\n{}", process.name, process.log_text()))
    }

    /// An admin request to `cp`.
    pub fn admin(&self, cp: &ControlPlane, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", cp.admin_url))
            .bearer_auth(ADMIN_TOKEN)
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
    pub async fn verify(&self, dp: &DataPlaneProcess, key: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .client
            .post(format!("{}/api/licenses/verify", dp.public_url))
            .json(&json!({ "licenseKey": key }))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// A data plane's `/status`.
    pub async fn status(&self, dp: &DataPlaneProcess) -> anyhow::Result<Value> {
        Ok(self
            .client
            .get(format!("{}/status", dp.status_url))
            .send()
            .await?
            .json()
            .await?)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
