//! A throwaway PostgreSQL server ([`PgServer`]) and, for tests, fresh databases on one shared
//! per test process or on `DATABASE_URL` ([`fresh_database`], see [`shared`]).
//!
//! The server is initialised with trust authentication, superuser `postgres`, UTF-8 and the C
//! locale into a directory of its own (`data/`, `postgres.log`, the Unix socket), and listens
//! on 127.0.0.1. As root, `initdb` and `postgres` run as the `postgres` user (see
//! [`programs`]). It runs under a pipe watchdog (see [`wrapper`]) so that no server outlives
//! its runner. [`PgOptions`] says what differs between the tests (no durability, the files
//! removed at the end) and the benchmarks (PostgreSQL's default durability, slow statements
//! logged, the files kept).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::{Connection, Executor, PgConnection};

mod programs;
pub mod shared;
mod wrapper;

pub use shared::{fresh_database, server_url};

/// How long a launched server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many lines of the server's log an error message shows.
const LOG_TAIL_LINES: usize = 30;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Where its files go; created, must not hold a cluster yet.
    pub dir: PathBuf,
    /// PostgreSQL's default durability (`fsync`, `synchronous_commit`, `full_page_writes`
    /// on), so that commits cost what they cost in production; off, a crash may lose data.
    pub durable: bool,
    pub max_connections: u32,
    /// `shared_buffers`, when not PostgreSQL's default.
    pub shared_buffers: Option<String>,
    /// Log statements at least this slow, and every autovacuum.
    pub log_statements_slower_than: Option<Duration>,
    /// Remove `dir` once the server has stopped.
    pub remove_when_stopped: bool,
}

impl PgOptions {
    /// For tests: fast and disposable, in a new directory under the system's temp directory.
    pub fn for_tests() -> Self {
        PgOptions {
            dir: std::env::temp_dir().join(format!("lstest-pg-{}", uuid::Uuid::new_v4().simple())),
            durable: false,
            max_connections: 500,
            shared_buffers: Some("64MB".to_owned()),
            log_statements_slower_than: None,
            remove_when_stopped: true,
        }
    }

    /// For benchmarks: real commits, statements of 20 ms or more logged, files kept in `dir`.
    pub fn for_benchmarks(dir: &Path) -> Self {
        PgOptions {
            dir: dir.to_owned(),
            durable: true,
            max_connections: 200,
            shared_buffers: None,
            log_statements_slower_than: Some(Duration::from_millis(20)),
            remove_when_stopped: false,
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct PgServer {
    pub port: u16,
    pub dir: PathBuf,
    /// The directory of `initdb` and `postgres`.
    pub bin: PathBuf,
    /// `postgres --version`.
    pub version: String,
    /// The wrapper, whose stdin is the pipe that keeps the server alive.
    wrapper: Option<Child>,
}

impl PgServer {
    /// Initialises a cluster, launches the server and waits until it accepts connections.
    pub async fn start(options: PgOptions) -> anyhow::Result<Self> {
        let dir = options.dir.clone();
        let launching = tokio::task::spawn_blocking(move || launch(&options));
        let mut server = launching.await.context("the launching task panicked")??;
        if let Err(error) = wait_until_ready(&mut server).await {
            server.give_up();
            return Err(error).with_context(|| format!("PostgreSQL in {}", dir.display()));
        }
        Ok(server)
    }

    /// The superuser's URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The superuser's URL of the `postgres` database.
    pub fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// Creates the database `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> anyhow::Result<String> {
        let mut conn = PgConnection::connect(&self.admin_url()).await?;
        conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .with_context(|| format!("creating the database {name}"))?;
        let _ = conn.close().await;
        Ok(self.url(name))
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

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

    /// Stops the server (closing the watchdog's pipe) and waits up to 20 s for it to exit.
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

    /// Lets go of a server that failed to come up: closing the wrapper's stdin makes it stop
    /// `postgres`; if the wrapper is already gone, we remove the directory ourselves.
    fn give_up(&mut self) {
        if let Some(mut wrapper) = self.wrapper.take() {
            drop(wrapper.stdin.take());
            if let Ok(Some(_)) = wrapper.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }

    /// The tails of the wrapper's and the server's logs, for error messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["wrapper.log", "postgres.log"] {
            let path = self.dir.join(name);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                continue;
            }
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            out.push_str(&format!("\n--- last lines of {} ---\n", path.display()));
            out.push_str(&tail.join("\n"));
        }
        out
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Closing the pipe is enough: the wrapper stops the server on its own.
        if let Some(mut wrapper) = self.wrapper.take() {
            drop(wrapper.stdin.take());
            let _ = wrapper.wait();
        }
    }
}

/// The blocking part of [`PgServer::start`]: finds the programs, runs `initdb` and launches
/// the wrapper.
fn launch(options: &PgOptions) -> anyhow::Result<PgServer> {
    let bin = programs::find_binaries()?;
    let user = programs::ServerUser::detect()?;
    let dir = &options.dir;
    let created = !dir.exists();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let launched = initdb_and_spawn(&bin, user, options);
    if launched.is_err() && created {
        // No wrapper runs yet to remove the directory; we created it, so we may.
        let _ = std::fs::remove_dir_all(dir);
    }
    let (port, wrapper) = launched?;
    Ok(PgServer {
        port,
        dir: dir.clone(),
        version: programs::version(&bin),
        bin,
        wrapper: Some(wrapper),
    })
}

fn initdb_and_spawn(
    bin: &Path,
    user: programs::ServerUser,
    options: &PgOptions,
) -> anyhow::Result<(u16, Child)> {
    let dir = &options.dir;
    user.take_ownership(dir)?;
    let initdb = format!(
        "exec {} -D {} -A trust -U postgres --no-sync -E UTF8 --locale=C",
        programs::quote(&bin.join("initdb"))?,
        programs::quote(&dir.join("data"))?,
    );
    let output = user
        .command(&initdb)
        .stdin(Stdio::null())
        .output()
        .context("running initdb")?;
    if !output.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    let port = free_port()?;
    // Whatever `runuser`, `su` or the shell itself have to say, before `postgres` has a log.
    let wrapper_log = File::create(dir.join("wrapper.log")).context("creating wrapper.log")?;
    let script = wrapper::script(&bin.join("postgres"), dir, port, options)?;
    let wrapper = user
        .command(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(wrapper_log)
        // Its own process group: a Ctrl-C aimed at the runner reaches the runner only, and the
        // wrapper still gets to stop the server.
        .process_group(0)
        .spawn()
        .context("launching postgres")?;
    Ok((port, wrapper))
}

/// A port on 127.0.0.1 that was free a moment ago. The one probe left in the test support:
/// PostgreSQL cannot bind port 0 and report the port it got (`-p 0` is refused: "0 is outside
/// the valid range for parameter port"), so the server gets a probed port, chosen as late as
/// possible to leave little time for someone else to take it.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

/// Retries a connection until one succeeds, the server is seen to have died, or time runs out.
async fn wait_until_ready(server: &mut PgServer) -> anyhow::Result<()> {
    let url = server.admin_url();
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(2), PgConnection::connect(&url));
        let error = match attempt.await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "no answer in 2s".to_owned(),
        };
        if let Ok(status) = std::fs::read_to_string(server.dir.join("exited")) {
            bail!(
                "postgres exited with status {}{}",
                status.trim(),
                server.logs()
            );
        }
        let wrapper = server.wrapper.as_mut().context("no wrapper")?;
        if let Some(status) = wrapper.try_wait().context("checking on the wrapper")? {
            bail!(
                "the wrapper around postgres exited ({status}){}",
                server.logs()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "postgres did not accept connections within {READY_TIMEOUT:?} \
                 (last error: {error}){}",
                server.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
