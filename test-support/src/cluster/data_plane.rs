//! A data-plane process: connected to a control plane's cluster listener (or a proxy in front
//! of it), its public and status APIs on ports it bound itself, its disk cache in a directory
//! of its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::process::Process;
use crate::process::log::address;

use super::{Cluster, ControlPlane, flag_value, set_flag, strings};

/// The log line that tells where a data plane listens, with fields `public` and `status`.
const LISTENING: &str = "data plane listening";

/// A running data plane.
#[derive(Debug)]
pub struct DataPlane {
    pub process: Process,
    pub name: String,
    /// `http://127.0.0.1:<port>`: verify, validate, LicenseSpring.
    pub public_url: String,
    /// `http://127.0.0.1:<port>`: `/status`, `/metrics`.
    pub status_url: String,
    pub cache_dir: PathBuf,
    /// Its arguments, with the ports it got: a restart comes back on them.
    args: Vec<String>,
}

impl DataPlane {
    /// Points the data plane at another control plane (takes effect on restart).
    pub fn point_to(&mut self, cp: &ControlPlane) {
        set_flag(
            &mut self.args,
            "--cluster-control-plane",
            cp.cluster_addr.to_string(),
        );
    }
}

impl Cluster {
    /// Arguments for a data plane of the control plane at `control_plane` presenting the
    /// certificate `<cert>.crt` / `<cert>.key`, listening on port 0, with `cache_dir`.
    pub fn data_plane_args(
        &self,
        control_plane: SocketAddr,
        cache_dir: &Path,
        cert: &str,
    ) -> Vec<String> {
        let mut args = strings(&[
            "--cluster-control-plane",
            &control_plane.to_string(),
            "--cluster-server-name",
            "localhost",
            "--cluster-cert",
            &self.cert(&format!("{cert}.crt")),
            "--cluster-cert-key",
            &self.cert(&format!("{cert}.key")),
            "--cluster-ca-cert",
            &self.cert("cluster-ca.crt"),
            "--listen",
            "127.0.0.1:0",
            "--status-listen",
            "127.0.0.1:0",
            "--cache-dir",
            &cache_dir.display().to_string(),
        ]);
        args.extend(self.settings.data_plane_flags.iter().cloned());
        args
    }

    /// Starts data plane `name` with `args` and waits until it reports its addresses (not
    /// until it has a state: it may never get one).
    pub async fn spawn_data_plane(
        &self,
        name: &str,
        mut args: Vec<String>,
    ) -> anyhow::Result<DataPlane> {
        let mut process = self.spawn_data_plane_process(name, &args)?;
        let line = process
            .wait_for_log(LISTENING, self.settings.ready_timeout)
            .await?;
        let (public, status) = (address(&line, "public")?, address(&line, "status")?);
        set_flag(&mut args, "--listen", public.to_string());
        set_flag(&mut args, "--status-listen", status.to_string());
        let cache_dir = PathBuf::from(flag_value(&args, "--cache-dir").unwrap_or_default());
        Ok(DataPlane {
            process,
            name: name.to_owned(),
            public_url: format!("http://{public}"),
            status_url: format!("http://{status}"),
            cache_dir,
            args,
        })
    }

    /// Starts data plane `name` of `cp` with the usual certificate, its cache in
    /// `<dir>/<name>`, and waits until it serves.
    pub async fn start_data_plane(
        &self,
        name: &str,
        cp: &ControlPlane,
    ) -> anyhow::Result<DataPlane> {
        let args = self.data_plane_args(cp.cluster_addr, &self.dir.join(name), "cluster-dp");
        let dp = self.spawn_data_plane(name, args).await?;
        self.wait_ready(&format!("{}/status/ready", dp.status_url), &dp.process)
            .await?;
        Ok(dp)
    }

    /// Starts a stopped data plane again with the same ports, arguments and cache; does not
    /// wait.
    pub fn respawn_data_plane(&self, dp: &mut DataPlane) -> anyhow::Result<()> {
        dp.process = self.spawn_data_plane_process(&dp.name, &dp.args)?;
        Ok(())
    }

    /// Starts a stopped data plane again and waits until it serves.
    pub async fn restart_data_plane(&self, dp: &mut DataPlane) -> anyhow::Result<()> {
        self.respawn_data_plane(dp)?;
        self.wait_ready(&format!("{}/status/ready", dp.status_url), &dp.process)
            .await
    }

    fn spawn_data_plane_process(&self, name: &str, args: &[String]) -> anyhow::Result<Process> {
        self.spawn("data-plane", name, args, &self.settings.data_plane_log)
    }
}
