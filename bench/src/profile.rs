//! Optional CPU profiles of the processes under test (`scripts/bench --profile`): `perf record`
//! (software `cpu-clock` sampling, which works in VMs without hardware counters) attached to a
//! process for the length of one phase, then `perf report` reduced to the objects and functions
//! that took the most samples, and, where call chains were recorded, the inclusive time of our
//! own functions. The profiles explain the figures; they also slow the profiled phase down, so
//! a profiled run's figures are not the ones to quote.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `perf record`.
#[derive(Debug)]
pub struct Recorder {
    name: String,
    data: PathBuf,
    child: Child,
    /// Whether call chains are recorded (DWARF unwinding), for inclusive times.
    call_graph: bool,
}

/// Whether `perf record` can sample here.
pub fn available() -> bool {
    Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Symbols worth showing inclusive times of: our crates and the libraries on the hot paths
/// (runtime and thread frames, which include everything, are left out).
const OURS: &[&str] = &[
    "data_plane::",
    "control_plane::",
    "license_shared::",
    "serde_json::",
    "serde_path_to_error",
    "sqlx",
    "flate2",
    "miniz_oxide",
    "rustls",
    "tungstenite",
    "hyper::proto",
    "tower_http",
    "axum::",
    "malloc",
    "free",
];

impl Recorder {
    /// Samples `pid` into `<dir>/perf-<name>.data` until [`Recorder::finish`]: at 499 Hz
    /// without call chains, or at 199 Hz with DWARF call chains (`call_graph`; release builds
    /// have no frame pointers), which give each function's inclusive time.
    pub fn start(name: &str, pid: u32, dir: &Path, call_graph: bool) -> Option<Self> {
        let data = dir.join(format!("perf-{name}.data"));
        let mut command = Command::new("perf");
        command.args(["record", "-e", "cpu-clock", "-p", &pid.to_string()]);
        if call_graph {
            command.args(["-F", "199", "--call-graph", "dwarf,16384"]);
        } else {
            command.args(["-F", "499"]);
        }
        let child = command
            .arg("-o")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Recorder {
            name: name.to_owned(),
            data,
            child,
            call_graph,
        })
    }

    /// Stops recording and summarises the profile in one markdown line (`top` functions).
    pub async fn finish(mut self, top: usize) -> Option<String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let report_file = self.data.with_extension("txt");
        let by_symbol = report(&self.data, "symbol", false).await?;
        std::fs::write(&report_file, by_symbol.as_bytes()).ok();
        let by_object = report(&self.data, "dso", false).await.unwrap_or_default();
        let mut summary = format!(
            "Profile `{}` (perf cpu-clock; full report in {}): by object {}; by function (self) {}",
            self.name,
            report_file.display(),
            top_entries(&by_object, 4).join(", "),
            top_entries(&by_symbol, top).join("; ")
        );
        if self.call_graph {
            let inclusive = report(&self.data, "symbol", true).await.unwrap_or_default();
            std::fs::write(self.data.with_extension("children.txt"), &inclusive).ok();
            let ours: Vec<String> = top_entries(&inclusive, usize::MAX)
                .into_iter()
                .filter(|entry| {
                    let name = entry
                        .split_once("% ")
                        .map_or(entry.as_str(), |(_, name)| name);
                    OURS.iter().any(|part| outer(name).contains(part))
                })
                .take(top)
                .collect();
            let _ = write!(
                summary,
                "; inclusive, our code and libraries: {}",
                ours.join("; ")
            );
        }
        summary.push('.');
        Some(summary)
    }
}

/// `perf report` of `data` sorted by `key`, as text; `children`: inclusive times.
async fn report(data: &Path, key: &str, children: bool) -> Option<String> {
    let data = data.to_owned();
    let key = key.to_owned();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("perf");
        command
            .args(["report", "--stdio", "-g", "none", "--sort", &key, "-i"])
            .arg(&data);
        if children {
            command.args(["--children", "--percent-limit", "0.5"]);
        } else {
            command.arg("--no-children");
        }
        command.stderr(Stdio::null()).output()
    })
    .await
    .ok()?
    .ok()?;
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The first `count` entries of a `perf report --stdio` text: `12.34% name`; with
/// `--children`, the inclusive share comes first.
fn top_entries(text: &str, count: usize) -> Vec<String> {
    text.lines()
        .filter(|line| line.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|line| {
            let (share, rest) = line.trim().split_once('%')?;
            // With --children a second (self) percentage follows; skip it.
            let rest = rest.trim();
            let rest = match rest.split_once('%') {
                Some((number, after)) if number.trim().parse::<f64>().is_ok() => after,
                _ => rest,
            };
            let name = rest
                .trim()
                .trim_start_matches("[.]")
                .trim_start_matches("[k]")
                .trim();
            // perf pads with further columns after two or more spaces.
            let name = name.split("  ").next().unwrap_or(name).trim();
            Some(format!("{}% {}", share.trim(), shorten(name)))
        })
        .take(count)
        .collect()
}

/// A Rust symbol without its hash and with long generic paths cut down.
fn shorten(symbol: &str) -> String {
    let without_hash = match symbol.rfind("::h") {
        Some(at) if symbol[at + 3..].chars().all(|c| c.is_ascii_hexdigit()) => &symbol[..at],
        _ => symbol,
    };
    // Generic arguments beyond the first level are dropped.
    let mut out = String::new();
    let mut depth = 0usize;
    for c in without_hash.chars() {
        match c {
            '<' => {
                depth += 1;
                match depth {
                    1 => out.push('<'),
                    2 => out.push_str("<…"),
                    _ => {}
                }
            }
            '>' => {
                if depth <= 2 {
                    out.push('>');
                }
                depth = depth.saturating_sub(1);
            }
            _ if depth <= 1 => out.push(c),
            _ => {}
        }
    }
    out.replace('|', "/")
}

/// A symbol without generic arguments (`poll<axum::…>` is `poll`), except that a qualified
/// path (`<F as axum::handler::Handler<…>>::call`) keeps its first level: which function it
/// is, not what it is instantiated with.
fn outer(symbol: &str) -> String {
    let keep = usize::from(symbol.starts_with('<'));
    let mut out = String::new();
    let mut depth = 0usize;
    for c in symbol.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            _ if depth <= keep => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_names() {
        assert_eq!(outer("poll<axum::serve::X>"), "poll");
        assert_eq!(
            outer("<F as axum::handler::Handler<T>>::call"),
            "F as axum::handler::Handler::call"
        );
        assert_eq!(outer("data_plane::api::verify"), "data_plane::api::verify");
    }

    #[test]
    fn symbols_are_shortened() {
        assert_eq!(
            shorten("serde_json::ser::format_escaped_str::h0123456789abcdef"),
            "serde_json::ser::format_escaped_str"
        );
        assert_eq!(
            shorten("<alloc::vec::Vec<T> as core::clone::Clone>::clone"),
            "<alloc::vec::Vec<…> as core::clone::Clone>::clone"
        );
    }
}
