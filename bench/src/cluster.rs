//! The processes under test, started the way `scripts/dev-cluster` starts them but from the
//! release build, through the workspace's shared [`Cluster`] (development certificates, one
//! control plane with a bootstrap admin token and its mTLS cluster listener, data planes
//! directly or through a byte-counting [`Proxy`](test_support::proxy::Proxy), every process on
//! port 0), with the benchmarks' log settings; plus the baseline server and the few HTTP calls
//! the benchmarks make.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;
use test_support::cluster::{Cluster, Settings};
use test_support::process::Process;
use test_support::process::log::address;

pub use test_support::cluster::{ControlPlane, DataPlane};

/// The bootstrap admin token of the benchmark control plane.
pub const ADMIN_TOKEN: &str = "bench-admin-token-not-a-secret";
/// How long a process gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the binaries are and where the run keeps its files.
#[derive(Debug, Clone)]
pub struct Setup {
    pub cluster: Cluster,
    /// The run directory (logs, certificates, caches).
    pub dir: PathBuf,
    pub database_url: String,
    pub client: reqwest::Client,
}

/// The baseline server.
#[derive(Debug)]
pub struct Baseline {
    pub process: Process,
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
        let settings = Settings {
            admin_token: ADMIN_TOKEN.to_owned(),
            ready_timeout: READY_TIMEOUT,
            control_plane_flags: Vec::new(),
            data_plane_flags: Vec::new(),
            // Each delta sent is logged at debug: the propagation figures are split with it.
            control_plane_log: "info,control_plane::cluster::session=debug".to_owned(),
            // Cache writes are logged at debug: counted to explain where the time goes.
            data_plane_log: "info,data_plane::cache=debug".to_owned(),
        };
        let cluster = Cluster::new(bin, dir.clone(), settings)?;
        Ok(Setup {
            client: cluster.client.clone(),
            cluster,
            dir,
            database_url,
        })
    }

    /// Starts the control plane and waits until it is ready.
    pub async fn start_control_plane(&self) -> anyhow::Result<ControlPlane> {
        self.cluster
            .start_control_plane("control-plane", &self.database_url)
            .await
    }

    /// Starts a data plane named `name` that reaches the control plane at `cluster_addr`
    /// (the control plane's listener, or a proxy in front of it), with its cache in
    /// `<run>/<name>`; waits only until it reports its addresses.
    pub async fn spawn_data_plane(
        &self,
        name: &str,
        cluster_addr: SocketAddr,
    ) -> anyhow::Result<DataPlane> {
        let args = self
            .cluster
            .data_plane_args(cluster_addr, &self.dir.join(name), "cluster-dp");
        self.cluster.spawn_data_plane(name, args).await
    }

    /// Starts a stopped data plane again, with the same ports and cache; does not wait.
    pub fn restart_data_plane(&self, dp: &mut DataPlane) -> anyhow::Result<()> {
        self.cluster.respawn_data_plane(dp)
    }

    /// Starts the baseline server answering `body` and waits until it answers.
    pub async fn start_baseline(&self, body: &[u8]) -> anyhow::Result<Baseline> {
        let body_file = self.dir.join("baseline-answer.json");
        std::fs::write(&body_file, body)?;
        let args = vec![
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--body-file".to_owned(),
            body_file.display().to_string(),
        ];
        let mut process = Process::start(
            "baseline",
            &self.cluster.bin.join("bench-baseline"),
            &args,
            &[],
            &self.dir,
        )?;
        let line = process
            .wait_for_log("baseline listening", READY_TIMEOUT)
            .await?;
        let baseline = Baseline {
            url: format!("http://{}", address(&line, "addr")?),
            process,
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
                    baseline.process.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An admin request to the control plane.
    pub fn admin(&self, cp: &ControlPlane, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.cluster.admin(cp, method, path)
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
            if !dp.process.is_running() {
                bail!("{} exited; see {}", dp.name, dp.process.log.display());
            }
            if since.elapsed() > timeout {
                bail!(
                    "{} did not reach revision {revision} within {timeout:?}; see {}",
                    dp.name,
                    dp.process.log.display()
                );
            }
            tokio::time::sleep(every).await;
        }
    }

    /// `POST /api/licenses/verify` on `base_url`: status and exact answer bytes.
    pub async fn verify(&self, base_url: &str, key: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        self.cluster.verify(base_url, key).await
    }
}

/// The release binaries next to this runner (`target/release`).
pub fn release_bin_dir() -> anyhow::Result<PathBuf> {
    test_support::binaries::next_to_this_program(&["control-plane", "data-plane", "bench-baseline"])
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
