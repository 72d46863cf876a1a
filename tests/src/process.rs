//! Real processes for cluster tests: the workspace's `control-plane` and `data-plane` binaries,
//! built once per test run, started on free loopback ports with their output in log files,
//! killed (SIGKILL) or stopped (SIGTERM) on demand and always killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The directory holding the built binaries (`target/debug`), after building them once.
pub fn binaries() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "-p", "control-plane", "-p", "data-plane", "--bins"];
    // A release test run (`cargo test --release`, for measurements) runs release binaries.
    if !cfg!(debug_assertions) {
        args.push("--release");
    }
    let output = Command::new(cargo)
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .context("running cargo build for the cluster binaries")?;
    if !output.status.success() {
        bail!(
            "building the cluster binaries failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // This test binary lives in target/debug/deps.
    let exe = std::env::current_exe().context("locating the test binary")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not under target/<profile>/deps")?;
    Ok(dir.to_path_buf())
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A running child process with its output in `log`.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Process {
    /// Starts `binary` (`control-plane` or `data-plane`) with `args` and `envs`.
    pub fn start(
        name: &str,
        binary: &str,
        args: &[String],
        envs: &[(&str, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(binaries()?.join(binary));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        Ok(Self {
            name: name.to_owned(),
            log,
            child: Some(child),
        })
    }

    /// SIGKILL: the process dies without any chance to clean up.
    /// The operating-system process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Resident memory in bytes (Linux `VmRSS`), while it runs.
    pub fn resident_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for a graceful exit (SIGKILL after 10 s).
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
