//! Reads back what the criterion micro-benchmarks (`bench/benches/micro.rs`) measured, from
//! criterion's own files (`<target>/criterion/<group>/<bench>/new/{benchmark,estimates}.json`),
//! so that the results table carries them too. Only results written since the run began are
//! taken: stale ones from an older build are left out.

use std::path::Path;
use std::time::SystemTime;

use serde_json::Value;

/// `(benchmark id, median time)` of every benchmark measured since `since`, sorted by id.
pub fn results(criterion_dir: &Path, since: SystemTime) -> Vec<(String, String)> {
    let mut found = Vec::new();
    collect(criterion_dir, since, &mut found, 0);
    found.sort();
    found
}

fn collect(dir: &Path, since: SystemTime, found: &mut Vec<(String, String)>, depth: usize) {
    if depth > 6 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new") {
            if let Some(result) = read(&path, since) {
                found.push(result);
            }
        } else {
            collect(&path, since, found, depth + 1);
        }
    }
}

fn read(dir: &Path, since: SystemTime) -> Option<(String, String)> {
    let estimates_path = dir.join("estimates.json");
    let modified = std::fs::metadata(&estimates_path).ok()?.modified().ok()?;
    if modified < since {
        return None;
    }
    let benchmark: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("benchmark.json")).ok()?).ok()?;
    let estimates: Value =
        serde_json::from_str(&std::fs::read_to_string(estimates_path).ok()?).ok()?;
    let id = benchmark["full_id"].as_str()?.to_owned();
    let nanos = estimates["median"]["point_estimate"].as_f64()?;
    Some((id, duration(nanos)))
}

/// Nanoseconds in a readable unit.
pub fn duration(nanos: f64) -> String {
    if nanos < 1_000.0 {
        format!("{nanos:.1} ns")
    } else if nanos < 1_000_000.0 {
        format!("{:.2} µs", nanos / 1_000.0)
    } else if nanos < 1_000_000_000.0 {
        format!("{:.2} ms", nanos / 1_000_000.0)
    } else {
        format!("{:.2} s", nanos / 1_000_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(duration(12.34), "12.3 ns");
        assert_eq!(duration(1_500.0), "1.50 µs");
        assert_eq!(duration(2_500_000.0), "2.50 ms");
        assert_eq!(duration(3e9), "3.00 s");
    }
}
