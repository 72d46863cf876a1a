//! [`Cluster`]: real control-plane and data-plane processes talking mTLS, with development
//! certificates from `control-plane gen-cert`, as the tests and the benchmarks start them.
//!
//! Every process binds port 0 and the addresses it got are read from its log (the control
//! plane's "admin API listening" and "cluster listener accepting data planes", the data
//! plane's "data plane listening"), so no other test can take a port between a probe and the
//! bind. The arguments are then rewritten to those concrete ports: a restarted process comes
//! back where it was, which matters because data planes are configured with the control
//! plane's cluster address.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::json;

use crate::process::Process;
use crate::wait::wait_for;

mod control_plane;
mod data_plane;

pub use control_plane::ControlPlane;
pub use data_plane::DataPlane;

/// What differs between the clusters of the tests and of the benchmarks.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The bootstrap admin token of every control plane.
    pub admin_token: String,
    /// How long a process gets to report its addresses and to become ready.
    pub ready_timeout: Duration,
    /// Flags added to every control plane's `serve`.
    pub control_plane_flags: Vec<String>,
    /// Flags added to every data plane's.
    pub data_plane_flags: Vec<String>,
    /// `RUST_LOG` of the control planes.
    pub control_plane_log: String,
    /// `RUST_LOG` of the data planes.
    pub data_plane_log: String,
}

/// The binaries, the run directory (logs, certificates, caches) and an HTTP client.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The directory of `control-plane` and `data-plane`.
    pub bin: PathBuf,
    pub dir: PathBuf,
    /// The development certificates (`cluster-ca.crt`, `cluster-cp.*`, `cluster-dp.*`).
    pub certs: PathBuf,
    pub client: reqwest::Client,
    pub settings: Settings,
}

impl Cluster {
    /// Makes `dir` and the certificates in `dir/certs`; no processes yet.
    pub fn new(bin: PathBuf, dir: PathBuf, settings: Settings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let certs = dir.join("certs");
        gen_cert(&bin, &certs)?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()?;
        Ok(Cluster {
            bin,
            dir,
            certs,
            client,
            settings,
        })
    }

    /// The path of certificate file `name`, as an argument.
    pub fn cert(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    /// Makes another, unrelated certificate set (another CA) in `out_dir`.
    pub fn gen_foreign_certs(&self, out_dir: &Path) -> anyhow::Result<()> {
        gen_cert(&self.bin, out_dir)
    }

    /// Starts `binary` as process `name`, logging JSON lines filtered by `log_filter`.
    fn spawn(
        &self,
        binary: &str,
        name: &str,
        args: &[String],
        log_filter: &str,
    ) -> anyhow::Result<Process> {
        Process::start(
            name,
            &self.bin.join(binary),
            args,
            &[("LOG_FORMAT", "json"), ("RUST_LOG", log_filter)],
            &self.dir,
        )
    }

    /// Waits until `url` answers 200, with `process`'s log in the error.
    pub async fn wait_ready(&self, url: &str, process: &Process) -> anyhow::Result<()> {
        let (client, url) = (self.client.clone(), url.to_owned());
        wait_for(
            &format!("{} to be ready", process.name),
            self.settings.ready_timeout,
            || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    client
                        .get(&url)
                        .timeout(Duration::from_secs(2))
                        .send()
                        .await
                        .is_ok_and(|response| response.status() == 200)
                }
            },
        )
        .await
        .with_context(|| {
            format!(
                "log of {} ({}):\n{}",
                process.name,
                process.log.display(),
                process.log_of_this_run()
            )
        })
    }

    /// An admin request to `cp`, with the bootstrap token.
    pub fn admin(&self, cp: &ControlPlane, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", cp.admin_url))
            .bearer_auth(&self.settings.admin_token)
    }

    /// `POST /api/licenses/verify` on `base_url`: the status and the exact answer bytes.
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

/// `control-plane gen-cert --out-dir out_dir`.
fn gen_cert(bin: &Path, out_dir: &Path) -> anyhow::Result<()> {
    let output = Command::new(bin.join("control-plane"))
        .args(["gen-cert", "--out-dir"])
        .arg(out_dir)
        .output()
        .context("running control-plane gen-cert")?;
    if !output.status.success() {
        bail!(
            "control-plane gen-cert failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The value after `flag` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let position = args.iter().position(|arg| arg == flag)?;
    args.get(position + 1).map(String::as_str)
}

/// Sets the value after `flag` in `args`, adding the pair if `flag` is not there.
fn set_flag(args: &mut Vec<String>, flag: &str, value: String) {
    match args.iter().position(|arg| arg == flag) {
        Some(position) if position + 1 < args.len() => args[position + 1] = value,
        _ => args.extend([flag.to_owned(), value]),
    }
}

/// `["--a", "b"]` as owned strings.
fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}
