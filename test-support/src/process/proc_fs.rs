//! What Linux's `/proc` says about a process: resident memory, CPU time (also of a whole
//! process tree, such as PostgreSQL's postmaster and its backends), bytes read.

use std::time::{Duration, Instant};

use super::Process;

/// Memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub resident: u64,
    /// `VmHWM`: the most it was ever resident.
    pub peak: u64,
}

impl Process {
    /// Resident and peak memory, while it runs.
    pub fn memory(&self) -> Option<Memory> {
        memory(self.pid()?)
    }

    /// Resident memory in bytes (`VmRSS`), while it runs.
    pub fn resident_bytes(&self) -> Option<u64> {
        self.memory().map(|memory| memory.resident)
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
}

/// Resident and peak memory of process `pid`.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(Memory {
        resident: kib("VmRSS:")? * 1024,
        peak: kib("VmHWM:")? * 1024,
    })
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces): the
/// state is the first of them.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU time (user + system) of process `pid`, assuming the usual 100 clock ticks per second.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let fields = stat_fields(pid)?;
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The parent process id of `pid`.
fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// CPU time of process `root` and all its children, as far as they are alive now.
pub fn tree_cpu_time(root: u32) -> Duration {
    let mut total = cpu_time(root).unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
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

/// CPU time used by a set of processes over a phase of a run.
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
                .map(|&(name, pid, tree)| (name.to_owned(), pid, used(pid, tree), tree))
                .collect(),
        }
    }

    /// What each used since the start, and the wall time, as one line:
    /// `CPU used over 12.3 s of wall time (24.6 core-seconds available on 2 cores): cp 3.1 s, …`.
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

/// CPU time of `pid`, or of the tree under it.
fn used(pid: u32, tree: bool) -> Duration {
    if tree {
        tree_cpu_time(pid)
    } else {
        cpu_time(pid).unwrap_or_default()
    }
}
