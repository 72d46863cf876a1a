//! Command line of the `data-plane` binary. Every flag also reads an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use license_shared::logging::LogFormat;

#[derive(Debug, Clone, Parser)]
#[command(name = "data-plane", version, about = "License server data plane")]
pub struct DataPlaneArgs {
    /// Address of the public API (verify, validate).
    #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// Address of `/status`, `/status/ready` and `/metrics`.
    #[arg(long, env = "STATUS_LISTEN", default_value = "127.0.0.1:8100")]
    pub status_listen: SocketAddr,

    /// Directory of the disk cache (state served at start while the control plane is away)
    /// and of this node's id.
    #[arg(long, env = "CACHE_DIR", default_value = "./dp-cache")]
    pub cache_dir: PathBuf,

    #[command(flatten)]
    pub cluster: ClusterArgs,

    /// How long a new-device validate waits for the control plane before answering 503.
    #[arg(long, env = "ACTIVATION_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub activation_timeout: Duration,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 16 * 1024)]
    pub max_body_bytes: usize,

    /// How long stopping (SIGTERM/SIGINT, or a failed task) may take: in-flight requests
    /// finish, the cluster link closes and the disk cache is written within it, after which
    /// what is left is aborted.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log format: `json`, `pretty`, or `auto` (JSON unless stdout is a terminal).
    #[arg(long, env = "LOG_FORMAT", default_value = "auto")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// `host:port` of the control plane's cluster listener.
    #[arg(long, env = "CLUSTER_CONTROL_PLANE", default_value = "127.0.0.1:8005")]
    pub cluster_control_plane: String,

    /// Name the control plane's certificate must carry (default: the host of
    /// `--cluster-control-plane`).
    #[arg(long, env = "CLUSTER_SERVER_NAME")]
    pub cluster_server_name: Option<String>,

    /// PEM certificate this data plane presents (signed by the cluster CA).
    #[arg(long, env = "CLUSTER_CERT")]
    pub cluster_cert: PathBuf,

    /// PEM private key of `--cluster-cert`.
    #[arg(long, env = "CLUSTER_CERT_KEY")]
    pub cluster_cert_key: PathBuf,

    /// PEM certificate of the cluster CA, the only issuer trusted for the control plane.
    #[arg(long, env = "CLUSTER_CA_CERT")]
    pub cluster_ca_cert: PathBuf,

    /// How often each side pings; a control plane silent for three intervals is dropped.
    #[arg(long, env = "CLUSTER_PING_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub cluster_ping_interval: Duration,

    /// How often usage telemetry (requests served, licenses validated) goes to the control
    /// plane.
    #[arg(long, env = "TELEMETRY_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub telemetry_interval: Duration,
}

impl ClusterArgs {
    /// The TLS server name to expect from the control plane.
    pub fn server_name(&self) -> String {
        self.cluster_server_name.clone().unwrap_or_else(|| {
            let address = &self.cluster_control_plane;
            match address.rsplit_once(':') {
                Some((host, _port)) => host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                None => address.clone(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_defaults_to_the_control_plane_host() {
        let args = DataPlaneArgs::parse_from([
            "data-plane",
            "--cluster-control-plane",
            "cp.internal:8005",
            "--cluster-cert",
            "dp.crt",
            "--cluster-cert-key",
            "dp.key",
            "--cluster-ca-cert",
            "ca.crt",
        ]);
        assert_eq!(args.cluster.server_name(), "cp.internal");
        assert_eq!(args.listen.port(), 8000);
    }

    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        DataPlaneArgs::command().debug_assert();
    }
}
