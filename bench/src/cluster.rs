//! The processes under test, started the way `scripts/dev-cluster` starts them but from the
//! release build: development certificates from `control-plane gen-cert`, one control plane
//! with a bootstrap admin token and its mTLS cluster listener, data planes (directly or through
//! a [`CountingProxy`](crate::proxy::CountingProxy)), and the baseline server; plus the few HTTP
//! calls the benchmarks make to them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::process::{Proc, free_port};

/// The bootstrap admin token of the benchmark control plane.
pub const ADMIN_TOKEN: &str = "bench-admin-token-not-a-secret";
/// How long a process gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the binaries are and where the run keeps its files.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The directory of `control-plane`, `data-plane` and `bench-baseline` (the release build).
    pub bin: PathBuf,
    /// The run directory (logs, certificates, caches).
    pub dir: PathBuf,
    pub certs: PathBuf,
    pub database_url: String,
    pub client: reqwest::Client,
}

/// The control plane.
#[derive(Debug)]
pub struct ControlPlane {
    pub proc: Proc,
    pub admin_url: String,
    pub cluster_addr: SocketAddr,
}

/// A data plane.
#[derive(Debug)]
pub struct DataPlane {
    pub proc: Proc,
    pub name: String,
    pub public_url: String,
    pub status_url: String,
    pub cache_dir: PathBuf,
    args: Vec<String>,
}

/// The baseline server.
#[derive(Debug)]
pub struct Baseline {
    pub proc: Proc,
    pub url: String,
}

/// What a data plane's `/status` says.
#[derive(Debug, Clone, Copy, Default)]
pub struct DpStatus {
    pub revision: Option<i64>,
    pub licenses: u64,
}

impl Setup {
    /// Makes the certificates of the run (`control-plane gen-cert`).
    pub fn new(bin: PathBuf, dir: PathBuf, database_url: String) -> anyhow::Result<Self> {
        let certs = dir.join("certs");
        let output = Command::new(bin.join("control-plane"))
            .args(["gen-cert", "--out-dir"])
            .arg(&certs)
            .output()
            .context("running control-plane gen-cert")?;
        if !output.status.success() {
            bail!(
                "control-plane gen-cert failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()?;
        Ok(Setup {
            bin,
            dir,
            certs,
            database_url,
            client,
        })
    }

    fn cert(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    /// Starts the control plane and waits until it is ready.
    pub async fn start_control_plane(&self) -> anyhow::Result<ControlPlane> {
        let admin_port = free_port()?;
        let cluster_port = free_port()?;
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
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let proc = Proc::spawn(
            "control-plane",
            &self.bin.join("control-plane"),
            &args,
            // Each delta sent is logged at debug: the propagation figures are split with it.
            &[
                ("LOG_FORMAT", "json"),
                ("RUST_LOG", "info,control_plane::cluster::session=debug"),
            ],
            &self.dir,
        )?;
        let cp = ControlPlane {
            proc,
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            cluster_addr: SocketAddr::from(([127, 0, 0, 1], cluster_port)),
        };
        self.wait_ok(&format!("{}/status/ready", cp.admin_url), &cp.proc)
            .await?;
        Ok(cp)
    }

    /// Starts a data plane named `name` that reaches the control plane at `cluster_addr`
    /// (the control plane's listener, or a proxy in front of it), with its cache in
    /// `<run>/<name>`; does not wait.
    pub fn spawn_data_plane(
        &self,
        name: &str,
        cluster_addr: SocketAddr,
    ) -> anyhow::Result<DataPlane> {
        let public_port = free_port()?;
        let status_port = free_port()?;
        let cache_dir = self.dir.join(name);
        let args: Vec<String> = [
            "--cluster-control-plane",
            &cluster_addr.to_string(),
            "--cluster-server-name",
            "localhost",
            "--cluster-cert",
            &self.cert("cluster-dp.crt"),
            "--cluster-cert-key",
            &self.cert("cluster-dp.key"),
            "--cluster-ca-cert",
            &self.cert("cluster-ca.crt"),
            "--listen",
            &format!("127.0.0.1:{public_port}"),
            "--status-listen",
            &format!("127.0.0.1:{status_port}"),
            "--cache-dir",
            &cache_dir.display().to_string(),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let proc = self.spawn_dp_process(name, &args)?;
        Ok(DataPlane {
            proc,
            name: name.to_owned(),
            public_url: format!("http://127.0.0.1:{public_port}"),
            status_url: format!("http://127.0.0.1:{status_port}"),
            cache_dir,
            args,
        })
    }

    fn spawn_dp_process(&self, name: &str, args: &[String]) -> anyhow::Result<Proc> {
        Proc::spawn(
            name,
            &self.bin.join("data-plane"),
            args,
            // Cache writes are logged at debug: counted to explain where the time goes.
            &[
                ("LOG_FORMAT", "json"),
                ("RUST_LOG", "info,data_plane::cache=debug"),
            ],
            &self.dir,
        )
    }

    /// Starts a stopped data plane again, with the same ports and cache; does not wait.
    pub fn restart_data_plane(&self, dp: &mut DataPlane) -> anyhow::Result<()> {
        dp.proc = self.spawn_dp_process(&dp.name, &dp.args)?;
        Ok(())
    }

    /// Starts the baseline server answering `body` and waits until it answers.
    pub async fn start_baseline(&self, body: &[u8]) -> anyhow::Result<Baseline> {
        let body_file = self.dir.join("baseline-answer.json");
        std::fs::write(&body_file, body)?;
        let port = free_port()?;
        let args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--body-file".to_owned(),
            body_file.display().to_string(),
        ];
        let proc = Proc::spawn(
            "baseline",
            &self.bin.join("bench-baseline"),
            &args,
            &[],
            &self.dir,
        )?;
        let baseline = Baseline {
            proc,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let answer = self
                .client
                .post(format!("{}/api/licenses/verify", baseline.url))
                .body("{}")
                .send()
                .await;
            if answer.is_ok_and(|answer| answer.status().is_success()) {
                return Ok(baseline);
            }
            if Instant::now() > deadline {
                bail!(
                    "the baseline server did not start; see {}",
                    baseline.proc.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `url` answers 200, failing early if `proc` exits.
    async fn wait_ok(&self, url: &str, proc: &Proc) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(answer) = self.client.get(url).send().await {
                if answer.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} was not ready in time; see {}",
                    proc.name,
                    proc.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An admin request to the control plane.
    pub fn admin(&self, cp: &ControlPlane, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", cp.admin_url))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// An admin call that must answer `expected`; returns the answer's JSON.
    pub async fn admin_call(
        &self,
        cp: &ControlPlane,
        method: Method,
        path: &str,
        body: Value,
        expected: u16,
    ) -> anyhow::Result<Value> {
        let answer = self
            .admin(cp, method.clone(), path)
            .json(&body)
            .send()
            .await?;
        let status = answer.status().as_u16();
        let text = answer.text().await?;
        if status != expected {
            bail!("{method} {path} answered {status}, not {expected}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The control plane's newest committed revision.
    pub async fn cp_revision(&self, cp: &ControlPlane) -> anyhow::Result<i64> {
        let status: Value = self
            .client
            .get(format!("{}/status", cp.admin_url))
            .send()
            .await?
            .json()
            .await?;
        status["database"]["revision"]
            .as_i64()
            .with_context(|| format!("no revision in the control plane's status: {status}"))
    }

    /// A data plane's `/status`, or `None` while it does not answer.
    pub async fn dp_status(&self, dp: &DataPlane) -> Option<DpStatus> {
        let status: Value = self
            .client
            .get(format!("{}/status", dp.status_url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some(DpStatus {
            revision: status["revision"].as_i64(),
            licenses: status["licenses"].as_u64().unwrap_or(0),
        })
    }

    /// Polls a data plane's `/status` every `every` until its revision reaches `revision`;
    /// returns when it first answered at all and when it reached the revision (both measured
    /// from `since`).
    pub async fn wait_revision(
        &self,
        dp: &mut DataPlane,
        revision: i64,
        since: Instant,
        every: Duration,
        timeout: Duration,
    ) -> anyhow::Result<(Duration, Duration)> {
        let mut answered = None;
        loop {
            if let Some(status) = self.dp_status(dp).await {
                let now = since.elapsed();
                answered.get_or_insert(now);
                if status.revision.is_some_and(|applied| applied >= revision) {
                    return Ok((answered.unwrap_or(now), now));
                }
            }
            if !dp.proc.is_running() {
                bail!("{} exited; see {}", dp.name, dp.proc.log.display());
            }
            if since.elapsed() > timeout {
                bail!(
                    "{} did not reach revision {revision} within {timeout:?}; see {}",
                    dp.name,
                    dp.proc.log.display()
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    /// `POST /api/licenses/verify` on `base_url`: status and exact answer bytes.
    pub async fn verify(&self, base_url: &str, key: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let answer = self
            .client
            .post(format!("{base_url}/api/licenses/verify"))
            .json(&json!({ "licenseKey": key }))
            .send()
            .await?;
        let status = answer.status().as_u16();
        Ok((status, answer.bytes().await?.to_vec()))
    }
}

/// The release binaries next to this runner (`target/release`).
pub fn release_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the runner has no directory")?;
    for binary in ["control-plane", "data-plane", "bench-baseline"] {
        if !dir.join(binary).exists() {
            bail!(
                "{} is missing; build first: cargo build --release -p control-plane -p data-plane -p bench",
                dir.join(binary).display()
            );
        }
    }
    Ok(dir.to_owned())
}

/// `path` relative to the current directory, for messages.
pub fn shown(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_owned())
        .display()
        .to_string()
}
