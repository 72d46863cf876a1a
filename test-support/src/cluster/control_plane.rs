//! A control-plane process: `control-plane serve` on a database, its admin API and cluster
//! listener on ports it bound itself.

use std::net::SocketAddr;

use crate::process::Process;
use crate::process::log::address;

use super::{Cluster, set_flag, strings};

/// The log line, and its field, that tell where the admin API listens.
const ADMIN_LISTENING: (&str, &str) = ("admin API listening", "addr");
/// The log line, and its field, that tell where data planes connect.
const CLUSTER_LISTENING: (&str, &str) = ("cluster listener accepting data planes", "addr");

/// A running control plane.
#[derive(Debug)]
pub struct ControlPlane {
    pub process: Process,
    /// `http://127.0.0.1:<port>`.
    pub admin_url: String,
    pub admin_addr: SocketAddr,
    /// Where data planes connect (mTLS websockets).
    pub cluster_addr: SocketAddr,
    /// Its arguments, with the ports it got: a restart comes back on them.
    args: Vec<String>,
}

impl ControlPlane {
    /// The port of the cluster listener.
    pub fn cluster_port(&self) -> u16 {
        self.cluster_addr.port()
    }
}

impl Cluster {
    /// Starts control plane `name` on `database_url` and waits until it is ready.
    pub async fn start_control_plane(
        &self,
        name: &str,
        database_url: &str,
    ) -> anyhow::Result<ControlPlane> {
        let mut args = strings(&[
            "serve",
            "--database-url",
            database_url,
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token",
            &self.settings.admin_token,
            "--cluster-listen",
            "127.0.0.1:0",
            "--cluster-cert",
            &self.cert("cluster-cp.crt"),
            "--cluster-cert-key",
            &self.cert("cluster-cp.key"),
            "--cluster-ca-cert",
            &self.cert("cluster-ca.crt"),
        ]);
        args.extend(self.settings.control_plane_flags.iter().cloned());
        let mut process = self.spawn_control_plane(name, &args)?;
        let timeout = self.settings.ready_timeout;
        let (message, field) = ADMIN_LISTENING;
        let admin_addr = address(&process.wait_for_log(message, timeout).await?, field)?;
        let (message, field) = CLUSTER_LISTENING;
        let cluster_addr = address(&process.wait_for_log(message, timeout).await?, field)?;
        set_flag(&mut args, "--admin-listen", admin_addr.to_string());
        set_flag(&mut args, "--cluster-listen", cluster_addr.to_string());
        let cp = ControlPlane {
            process,
            admin_url: format!("http://{admin_addr}"),
            admin_addr,
            cluster_addr,
            args,
        };
        self.wait_ready(&format!("{}/status/ready", cp.admin_url), &cp.process)
            .await?;
        Ok(cp)
    }

    /// Starts a stopped control plane again, on the ports it had, and waits until it is ready.
    pub async fn restart_control_plane(&self, cp: &mut ControlPlane) -> anyhow::Result<()> {
        cp.process = self.spawn_control_plane(&cp.process.name.clone(), &cp.args)?;
        self.wait_ready(&format!("{}/status/ready", cp.admin_url), &cp.process)
            .await
    }

    fn spawn_control_plane(&self, name: &str, args: &[String]) -> anyhow::Result<Process> {
        self.spawn(
            "control-plane",
            name,
            args,
            &self.settings.control_plane_log,
        )
    }
}
