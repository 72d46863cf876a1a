//! Command line of the `control-plane` binary. Every flag also reads an environment variable;
//! `serve` is the default when no subcommand is given, so `control-plane --admin-listen …` and
//! `control-plane serve --admin-listen …` are the same.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use license_shared::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "control-plane",
    version,
    about = "License server control plane"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log format: `json`, `pretty`, or `auto` (JSON unless stdout is a terminal).
    #[arg(long, env = "LOG_FORMAT", default_value = "auto", global = true)]
    pub log_format: LogFormat,
}

impl Cli {
    /// Parses the process's arguments, running `serve` when no subcommand is named.
    pub fn parse_with_default() -> Self {
        Self::parse_from(with_default_subcommand(std::env::args_os().collect()))
    }
}

const SUBCOMMANDS: &[&str] = &[
    "serve",
    "migrate",
    "tokens",
    "gen-cert",
    "gen-signing-key",
    "help",
];

/// Inserts `serve` after the program name unless a subcommand or a help/version flag is there.
fn with_default_subcommand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let named = args.iter().skip(1).any(|arg| {
        arg.to_str().is_some_and(|arg| {
            SUBCOMMANDS.contains(&arg) || ["-h", "--help", "-V", "--version"].contains(&arg)
        })
    });
    if !named && !args.is_empty() {
        args.insert(1, "serve".into());
    }
    args
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admin API and the database-backed public API (the default).
    Serve(Box<ServeArgs>),
    /// Apply the embedded database migrations and exit.
    Migrate(DatabaseArgs),
    /// Manage admin API tokens.
    Tokens(TokensArgs),
    /// Write a development cluster CA and the control-plane and data-plane certificates.
    GenCert(crate::gencert::GenCertArgs),
    /// Write a new Ed25519 signing key (PKCS#8 PEM) for `--signing-key`.
    GenSigningKey(GenSigningKeyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct GenSigningKeyArgs {
    /// Where to write the key (mode 0600).
    #[arg(long, default_value = "signing-key.pem")]
    pub out: PathBuf,

    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// Where the database is and how to pool connections to it.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Most connections held open to PostgreSQL.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,

    /// How long a request waits for a free connection before answering 503.
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub db_acquire_timeout: Duration,

    /// How long start-up keeps retrying an unreachable database before giving up.
    #[arg(long, env = "DB_STARTUP_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub db_startup_timeout: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address of the admin API (also serves the public verify/validate and /status).
    #[arg(
        long,
        env = "ADMIN_LISTEN",
        default_value = "127.0.0.1:8001",
        help_heading = "Admin API"
    )]
    pub admin_listen: SocketAddr,

    /// Bootstrap admin token with full rights. More tokens: `control-plane tokens create`.
    #[arg(
        long,
        env = "ADMIN_TOKEN",
        hide_env_values = true,
        help_heading = "Admin API"
    )]
    pub admin_token: Option<String>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024, help_heading = "Admin API")]
    pub max_body_bytes: usize,

    /// How long in-flight requests may run after SIGTERM/SIGINT before the server stops anyway.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, help_heading = "Admin API")]
    pub shutdown_timeout: Duration,

    /// Ed25519 private key (PKCS#8 PEM) that signs license documents and data-plane responses.
    /// Without it the first control plane generates one and keeps it in the database, so every
    /// replica shares it. Given, it becomes the active key (earlier keys stay published).
    #[arg(long, env = "SIGNING_KEY", help_heading = "Signing")]
    pub signing_key: Option<PathBuf>,

    /// Ed25519 public key (SPKI PEM file) of an issuer whose signed license documents may be
    /// imported through Kong's `/licenses`. Repeat the flag, or separate files with commas in
    /// the environment variable.
    #[arg(
        long = "trusted-issuer-key",
        env = "TRUSTED_ISSUER_KEYS",
        value_delimiter = ',',
        help_heading = "Signing"
    )]
    pub trusted_issuer_keys: Vec<PathBuf>,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// The listener data planes connect to. It runs when the three certificate flags are given.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster")]
pub struct ClusterArgs {
    /// Address data planes connect to (TLS 1.3, client certificates required).
    #[arg(long, env = "CLUSTER_LISTEN", default_value = "127.0.0.1:8005")]
    pub cluster_listen: SocketAddr,

    /// PEM certificate (chain) the control plane presents to data planes.
    #[arg(long, env = "CLUSTER_CERT", requires_all = ["cluster_cert_key", "cluster_ca_cert"])]
    pub cluster_cert: Option<PathBuf>,

    /// PEM private key of `--cluster-cert`.
    #[arg(long, env = "CLUSTER_CERT_KEY", requires_all = ["cluster_cert", "cluster_ca_cert"])]
    pub cluster_cert_key: Option<PathBuf>,

    /// PEM certificate of the cluster CA; data planes must present a certificate it signed.
    #[arg(long, env = "CLUSTER_CA_CERT", requires_all = ["cluster_cert", "cluster_cert_key"])]
    pub cluster_ca_cert: Option<PathBuf>,

    /// How often each side pings; a data plane silent for three intervals is dropped.
    #[arg(long, env = "CLUSTER_PING_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub cluster_ping_interval: Duration,
}

impl ServeArgs {
    /// Settings for a server on `database_url` with every other flag at its default.
    pub fn with_database_url(database_url: &str) -> Self {
        let cli = Cli::parse_from(["control-plane", "serve", "--database-url", database_url]);
        match cli.command {
            Command::Serve(args) => *args,
            _ => unreachable!("`serve` parses to Command::Serve"),
        }
    }
}

#[derive(Debug, Args)]
pub struct TokensArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(subcommand)]
    pub command: TokensCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (shown only once).
    Create {
        /// Unique name, e.g. the person or system using it.
        #[arg(long)]
        name: String,
        /// The token may read but not change anything.
        #[arg(long)]
        read_only: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_is_the_default_subcommand() {
        let args = [
            "control-plane",
            "--database-url",
            "postgres://db/x",
            "--admin-listen",
            "127.0.0.1:9",
        ];
        let cli = Cli::try_parse_from(with_default_subcommand(
            args.iter().map(Into::into).collect(),
        ))
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("expected serve, got {:?}", cli.command);
        };
        assert_eq!(args.admin_listen.port(), 9);
        assert_eq!(args.database.db_acquire_timeout, Duration::from_secs(3));
    }

    #[test]
    fn subcommands_do_not_need_serve_flags() {
        let cli = Cli::try_parse_from([
            "control-plane",
            "tokens",
            "--database-url",
            "postgres://db/x",
            "create",
            "--name",
            "ci",
            "--read-only",
        ])
        .expect("parses");
        let Command::Tokens(TokensArgs {
            command: TokensCommand::Create { name, read_only },
            ..
        }) = cli.command
        else {
            panic!("expected tokens create");
        };
        assert_eq!((name.as_str(), read_only), ("ci", true));
    }

    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
