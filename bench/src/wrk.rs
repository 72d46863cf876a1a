//! Drives `wrk` (the load generator) with `bench/wrk/load.lua`: random existing keys, bounded
//! duration and connections, and one machine-readable result line per run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use test_support::process;

/// The Lua script, written into the run directory.
pub const SCRIPT: &str = include_str!("../wrk/load.lua");

/// What a run sends.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `POST /api/licenses/verify`.
    Verify,
    /// LicenseSpring `GET /api/v4/check_license`, signed.
    Check {
        product: String,
        device: String,
        date: String,
        authorization: String,
    },
}

/// One load run.
#[derive(Debug, Clone)]
pub struct Load {
    /// Base URL (`http://127.0.0.1:8000`).
    pub url: String,
    pub mode: Mode,
    /// File of keys, one per line.
    pub keys: PathBuf,
    pub threads: u32,
    pub connections: u32,
    pub duration: Duration,
    /// Pause of each connection after every answer (0: none, full speed).
    pub delay_ms: u32,
}

/// What `done()` in the script reports.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Outcome {
    pub requests: u64,
    pub duration_us: u64,
    pub bytes: u64,
    pub connect_errors: u64,
    pub read_errors: u64,
    pub write_errors: u64,
    /// Answers with a status of 400 or more.
    pub status_errors: u64,
    pub timeouts: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
    /// CPU time the server used during the run, per request.
    #[serde(skip)]
    pub server_cpu_us_per_request: Option<f64>,
    /// How busy the whole machine was during the run (0-1, all cores: load generator, server
    /// and everything else).
    #[serde(skip)]
    pub machine_busy: Option<f64>,
}

impl Outcome {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        if self.duration_us == 0 {
            return 0.0;
        }
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }

    /// Failed requests of any kind.
    pub fn errors(&self) -> u64 {
        self.connect_errors
            + self.read_errors
            + self.write_errors
            + self.status_errors
            + self.timeouts
    }
}

/// `wrk --version`'s first line.
pub fn version() -> String {
    Command::new("wrk")
        .arg("--version")
        .output()
        .map(|out| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            text.lines()
                .next()
                .unwrap_or_default()
                .split(" Copyright")
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "wrk (not found)".to_owned())
}

/// Runs `load` to the end and returns its figures; `server_pid`, when given, is the process
/// whose CPU time is charged to the requests.
pub async fn run(load: &Load, script: &Path, server_pid: Option<u32>) -> anyhow::Result<Outcome> {
    let mut command = Command::new("wrk");
    command
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections.max(load.threads)))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .args(["--timeout", "2s", "-s"])
        .arg(script)
        .arg(&load.url)
        .env("BENCH_KEYS", &load.keys)
        .env("BENCH_DELAY_MS", load.delay_ms.to_string())
        .stdin(Stdio::null());
    match &load.mode {
        Mode::Verify => {
            command.env("BENCH_MODE", "verify");
        }
        Mode::Check {
            product,
            device,
            date,
            authorization,
        } => {
            command
                .env("BENCH_MODE", "check")
                .env("BENCH_PRODUCT", product)
                .env("BENCH_DEVICE", device)
                .env("BENCH_DATE", date)
                .env("BENCH_AUTHORIZATION", authorization);
        }
    }
    let cpu_before = server_pid.and_then(process::cpu_time);
    let machine_before = machine_ticks();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("waiting for wrk")?
        .context("running wrk (install it: apt-get install -y wrk)")?;
    let cpu_after = server_pid.and_then(process::cpu_time);
    let machine_after = machine_ticks();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BENCH_RESULT "))
        .with_context(|| format!("no result line in wrk's output: {stdout}"))?;
    let mut outcome: Outcome = serde_json::from_str(line)
        .with_context(|| format!("wrk's result line is not the expected JSON: {line}"))?;
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        if outcome.requests > 0 {
            outcome.server_cpu_us_per_request =
                Some(after.saturating_sub(before).as_secs_f64() * 1e6 / outcome.requests as f64);
        }
    }
    if let (Some((busy_before, all_before)), Some((busy_after, all_after))) =
        (machine_before, machine_after)
    {
        let all = all_after.saturating_sub(all_before);
        if all > 0 {
            outcome.machine_busy = Some(busy_after.saturating_sub(busy_before) as f64 / all as f64);
        }
    }
    Ok(outcome)
}

/// Busy and total clock ticks of all cores so far, from the `cpu` line of `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    // idle and iowait are fields 4 and 5.
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total.saturating_sub(idle), total))
}
