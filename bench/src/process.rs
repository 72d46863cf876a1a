//! Child processes of a benchmark run (control plane, data planes, the baseline server): started
//! with their output in a log file, stopped with SIGTERM (so a data plane flushes its disk
//! cache), killed if they outlive the run, and observed through `/proc` (resident memory, CPU
//! time).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A running (or stopped) child process.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub log: PathBuf,
    child: Option<Child>,
    /// When it was spawned.
    pub started: Instant,
}

/// Memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub resident: u64,
    /// `VmHWM`: the most it was ever resident.
    pub peak: u64,
}

impl Proc {
    /// Starts `program` with `args` and extra environment `env`; stdout and stderr go to
    /// `<log_dir>/<name>.log` (appended, so a restarted process keeps one log).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Proc {
            name: name.to_owned(),
            log,
            child: Some(child),
            started: Instant::now(),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Resident and peak memory, while it runs.
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let kib = |field: &str| -> Option<u64> {
            let line = status.lines().find(|line| line.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        Some(Memory {
            resident: kib("VmRSS:")? * 1024,
            peak: kib("VmHWM:")? * 1024,
        })
    }

    /// CPU time used so far (user + system), while it runs.
    pub fn cpu_time(&self) -> Option<Duration> {
        cpu_time(self.pid()?)
    }

    /// Bytes this process has read through system calls (`rchar` of `/proc/<pid>/io`).
    pub fn read_bytes(&self) -> Option<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid()?)).ok()?;
        io.lines()
            .find_map(|line| line.strip_prefix("rchar: "))?
            .trim()
            .parse()
            .ok()
    }

    /// SIGTERM, then waits up to `grace` for it to exit, then SIGKILL.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + grace;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Everything it has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last JSON log line whose `message` is `message` (the binaries log JSON when their
    /// output is not a terminal), if any.
    pub fn last_log_line(&self, message: &str) -> Option<serde_json::Value> {
        self.log_text()
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["message"] == message || line["fields"]["message"] == message)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU time (user + system) of process `pid`, from `/proc/<pid>/stat`, assuming the usual
/// 100 clock ticks per second.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// A free port on 127.0.0.1 (bound and released; taken again at once by the caller).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The parent process id of `pid`, from `/proc/<pid>/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time of process `root` and all its children (PostgreSQL: the postmaster and its
/// backends), as far as they are alive now.
pub fn tree_cpu_time(root: u32) -> Duration {
    let mut total = cpu_time(root).unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if pid != root && parent_of(pid) == Some(root) {
                total += cpu_time(pid).unwrap_or_default();
            }
        }
    }
    total
}

/// CPU time used by a set of processes over a phase of the run.
#[derive(Debug)]
pub struct CpuMeter {
    started: Instant,
    /// (name, pid, CPU time at the start, whether the pid is a process tree root).
    processes: Vec<(String, u32, Duration, bool)>,
}

impl CpuMeter {
    /// Starts metering `processes` (name, pid, whole tree?).
    pub fn start(processes: &[(&str, u32, bool)]) -> Self {
        CpuMeter {
            started: Instant::now(),
            processes: processes
                .iter()
                .map(|(name, pid, tree)| {
                    let used = if *tree {
                        tree_cpu_time(*pid)
                    } else {
                        cpu_time(*pid).unwrap_or_default()
                    };
                    ((*name).to_owned(), *pid, used, *tree)
                })
                .collect(),
        }
    }

    /// What each used since the start, and the wall time, as one line:
    /// `CPU over 12.3 s wall (24.6 core-seconds on 2 cores): cp 3.1 s, …`.
    pub fn summary(&self) -> String {
        let wall = self.started.elapsed();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let used: Vec<String> = self
            .processes
            .iter()
            .map(|(name, pid, before, tree)| {
                let now = if *tree {
                    tree_cpu_time(*pid)
                } else {
                    cpu_time(*pid).unwrap_or(*before)
                };
                format!("{name} {:.1} s", now.saturating_sub(*before).as_secs_f64())
            })
            .collect();
        format!(
            "CPU used over {:.1} s of wall time ({:.1} core-seconds available on {cores} cores): {}",
            wall.as_secs_f64(),
            wall.as_secs_f64() * cores as f64,
            used.join(", ")
        )
    }
}
