//! The flags of `control-plane gen-cert`.

use std::path::PathBuf;

use clap::Args;

/// Flags of `control-plane gen-cert`.
#[derive(Debug, Clone, Args)]
pub struct GenCertArgs {
    /// Directory to write the CA, certificates and keys to (created if missing).
    #[arg(long, env = "CLUSTER_CERT_DIR", default_value = "./cluster-certs")]
    pub out_dir: PathBuf,

    /// Another DNS name or IP address data planes use to reach the control plane; repeatable,
    /// or comma-separated in the environment variable. `localhost`, `127.0.0.1` and `::1` are
    /// always included.
    #[arg(
        long = "cp-host",
        value_name = "NAME",
        env = "CLUSTER_CP_HOSTS",
        value_delimiter = ','
    )]
    pub cp_hosts: Vec<String>,

    /// How many days the CA and certificates are valid.
    #[arg(long, env = "CLUSTER_CERT_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,

    /// Replace existing files. A new CA invalidates every certificate the old one signed.
    /// (Deliberately without an environment variable: a forgotten one would replace a CA.)
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses_repeated_and_comma_separated_hosts() {
        use clap::Parser;

        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            args: GenCertArgs,
        }
        let cli = Cli::try_parse_from([
            "gen-cert",
            "--cp-host",
            "a.internal,b.internal",
            "--cp-host",
            "10.0.0.1",
        ])
        .expect("parses");
        assert_eq!(cli.args.cp_hosts, ["a.internal", "b.internal", "10.0.0.1"]);
        assert_eq!(cli.args.days, 365);
        assert!(!cli.args.force);
        assert!(Cli::try_parse_from(["gen-cert", "--days", "0"]).is_err());
    }
}
