//! Child processes of a test or benchmark run (control planes, data planes, the baseline
//! server): started with a cleared environment and their output appended to
//! `<log_dir>/<name>.log` (a restarted process keeps one log), stopped with SIGTERM (a data
//! plane then flushes its disk cache) or killed with SIGKILL on demand, and always killed on
//! drop. What they log is read back by [`log`]; what the kernel knows of them by [`proc_fs`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustix::process::{Pid, Signal, kill_process};

pub mod log;
pub mod proc_fs;

pub use proc_fs::{CpuMeter, Memory, cpu_time, tree_cpu_time};

/// How long [`Process::terminate`] waits for a graceful exit before it kills.
const TERMINATE_GRACE: Duration = Duration::from_secs(10);
/// How often a stopping process is checked on.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// A running (or stopped) child process with its output in `log`.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    pub log: PathBuf,
    /// When it was spawned.
    pub started: Instant,
    /// The log's length when it was spawned: what it logs from then on is this run's.
    log_start: u64,
    child: Option<Child>,
}

impl Process {
    /// Starts `program` with `args` and, on top of `PATH` (the only variable kept from this
    /// process), the environment `envs`.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let log_start = out.metadata().map_or(0, |meta| meta.len());
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            log,
            started: Instant::now(),
            log_start,
            child: Some(child),
        })
    }

    /// The operating-system process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Sends SIGTERM and returns at once (see [`Process::wait_exit`]).
    pub fn ask_to_stop(&self) {
        if let Some(child) = &self.child {
            ask_to_stop(child);
        }
    }

    /// Its exit status, if it ends within `timeout` (it is not killed otherwise).
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
    }

    /// SIGKILL: the process dies without any chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (blocking this thread) up to 10 s for a graceful exit, then SIGKILL.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + TERMINATE_GRACE;
            ask_to_stop(&child);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(EXIT_POLL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (asynchronously) up to `grace` for it to exit, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + grace;
            ask_to_stop(&child);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(EXIT_POLL).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends SIGTERM to `child` if it still runs.
fn ask_to_stop(child: &Child) {
    let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
    if let Some(pid) = pid {
        // It may have exited already: then there is nothing to stop.
        let _ = kill_process(pid, Signal::TERM);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}
