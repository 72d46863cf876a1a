//! A throwaway PostgreSQL server for one benchmark run, as `scripts/dev-cluster` makes one:
//! `initdb` with trust authentication into the run directory, `postgres` on a free loopback
//! port, both as the `postgres` user when we run as root (PostgreSQL refuses root).
//!
//! Autovacuum runs and statements slower than 20 ms are logged (`log_autovacuum_min_duration`,
//! `log_min_duration_statement`; logging only), so the suite can tell what the database was
//! doing when a measurement had a slow tail.
//!
//! The server keeps PostgreSQL's default durability (`fsync`, `synchronous_commit` on): the
//! admin-write and activation figures include a real commit. It runs under a small shell
//! wrapper whose stdin is a pipe from the runner; when the runner ends, however it ends, the
//! pipe closes and the wrapper asks `postgres` for a fast shutdown, so no server outlives a run.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{Connection, PgConnection};

use crate::process::free_port;

/// A running server.
#[derive(Debug)]
pub struct Postgres {
    /// URL of the `licenses` database.
    pub url: String,
    pub port: u16,
    pub dir: PathBuf,
    /// `postgres --version`.
    pub version: String,
    wrapper: Option<Child>,
}

/// The directory holding `initdb` and `postgres`: the first on `PATH`, else the highest
/// version under `/usr/lib/postgresql/*/bin`.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|dir| dir.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort_by_key(|dir| {
        dir.parent()
            .and_then(|version| version.file_name())
            .and_then(|name| name.to_str())
            .and_then(|name| name.parse::<u32>().ok())
            .unwrap_or(0)
    });
    candidates.extend(versions.into_iter().rev());
    for dir in candidates {
        let initdb = dir.join("initdb");
        if initdb.exists() {
            // `/usr/local/bin/initdb` may be a link into the real directory.
            let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
            if let Some(real_dir) = real.parent() {
                if real_dir.join("postgres").exists() {
                    return Ok(real_dir.to_owned());
                }
            }
        }
    }
    bail!(
        "PostgreSQL is not installed (no initdb and postgres on PATH or in /usr/lib/postgresql/*/bin)"
    )
}

/// Whether this process runs as root (`/proc/self` belongs to our effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// `script` run by `sh`, as the `postgres` user when we are root.
fn as_server_user(script: &str) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "sh", "-c", script]);
        command
    } else {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }
}

/// Single-quotes a path for `sh`.
fn quote(path: &Path) -> anyhow::Result<String> {
    let text = path.to_str().context("non-UTF-8 path")?;
    Ok(format!("'{}'", text.replace('\'', r"'\''")))
}

impl Postgres {
    /// Initialises a cluster in `dir` (which must not exist yet), starts the server and
    /// creates the `licenses` database.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        std::fs::create_dir_all(dir)?;
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()
                .context("chown")?;
            if !status.success() {
                bail!("cannot hand {} to the postgres user", dir.display());
            }
        }
        let version = Command::new(bin.join("postgres"))
            .arg("--version")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_default();
        let initdb = format!(
            "exec {} -D {} -A trust -U postgres -E UTF8 --locale=C --no-sync >{} 2>&1",
            quote(&bin.join("initdb"))?,
            quote(&dir.join("data"))?,
            quote(&dir.join("initdb.log"))?,
        );
        let status = as_server_user(&initdb)
            .stdin(Stdio::null())
            .status()
            .context("running initdb")?;
        if !status.success() {
            bail!("initdb failed; see {}", dir.join("initdb.log").display());
        }
        let port = free_port()?;
        // The server gets neither end of the pipe (fd 3 is closed for it); the watcher reads
        // it and stops the server when it closes.
        let script = format!(
            r#"dir={dir}
exec 3<&0 </dev/null
{postgres} -D "$dir/data" -p {port} -h 127.0.0.1 -k "$dir" -c max_connections=200 \
    -c log_autovacuum_min_duration=0 -c log_min_duration_statement=20 \
    3<&- >"$dir/postgres.log" 2>&1 &
pid=$!
{{ read _ignored <&3; kill -INT "$pid" 2>/dev/null; }} &
exec 3<&-
wait "$pid"
"#,
            dir = quote(dir)?,
            postgres = quote(&bin.join("postgres"))?,
        );
        let wrapper = as_server_user(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting postgres")?;
        let mut server = Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/licenses"),
            port,
            dir: dir.to_owned(),
            version,
            wrapper: Some(wrapper),
        };
        let admin = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut connection = loop {
            match PgConnection::connect(&admin).await {
                Ok(connection) => break connection,
                Err(error) if Instant::now() > deadline => {
                    server.stop().await;
                    bail!(
                        "PostgreSQL did not start: {error}; see {}",
                        dir.join("postgres.log").display()
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        sqlx::query("CREATE DATABASE licenses")
            .execute(&mut connection)
            .await?;
        connection.close().await.ok();
        Ok(server)
    }

    /// Fast shutdown, waiting for the server to exit.
    pub async fn stop(&mut self) {
        if let Some(mut wrapper) = self.wrapper.take() {
            drop(wrapper.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(wrapper.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = wrapper.kill();
            let _ = wrapper.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing the pipe is enough: the wrapper stops the server on its own.
        if let Some(mut wrapper) = self.wrapper.take() {
            drop(wrapper.stdin.take());
            let _ = wrapper.wait();
        }
    }
}

impl Postgres {
    /// The postmaster's process id (first line of `data/postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }
}
