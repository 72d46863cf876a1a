//! Reading the logs of a run for its details: PostgreSQL's slow statements, the data planes'
//! disk-cache writes and when they happened.

use std::time::Duration;

use serde_json::Value;

use super::join;

/// The statements PostgreSQL logged as slow (`duration: … ms  statement|execute …: SQL`),
/// grouped by their first words: `count × SQL… (max N ms)`, most frequent first.
pub(super) fn slow_statements(log: &str) -> String {
    let mut groups: Vec<(String, usize, f64)> = Vec::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("duration: ") else {
            continue;
        };
        let Some((number, rest)) = rest.split_once(" ms") else {
            continue;
        };
        let Ok(duration) = number.trim().parse::<f64>() else {
            continue;
        };
        // "  statement: SQL" or "  execute <name>: SQL".
        let sql = rest.split_once(": ").map_or(rest, |(_, sql)| sql).trim();
        let key: String = sql.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
        match groups.iter_mut().find(|(known, _, _)| *known == key) {
            Some((_, count, max)) => {
                *count += 1;
                *max = max.max(duration);
            }
            None => groups.push((key, 1, duration)),
        }
    }
    if groups.is_empty() {
        return "none".to_owned();
    }
    groups.sort_by_key(|group| std::cmp::Reverse(group.1));
    join(
        groups
            .iter()
            .take(6)
            .map(|(sql, count, max)| format!("{count} × `{sql}…` (max {max:.0} ms)")),
    )
}

/// How many "disk cache written" lines a data plane's log has after byte `from`, and the time
/// they report in total.
pub(super) fn cache_writes(log: &str, from: usize) -> (usize, Duration) {
    let tail = log.get(from..).unwrap_or_default();
    let mut count = 0;
    let mut total = Duration::ZERO;
    for line in tail
        .lines()
        .filter(|line| line.contains("disk cache written"))
    {
        count += 1;
        let parsed = serde_json::from_str::<Value>(line).ok();
        let elapsed = parsed.as_ref().and_then(|line| {
            line["elapsed"]
                .as_str()
                .or_else(|| line["fields"]["elapsed"].as_str())
                .and_then(debug_duration)
        });
        total += elapsed.unwrap_or_default();
    }
    (count, total)
}

/// When a data plane was writing its disk cache: (start, end) of every "disk cache written"
/// line in its log (end = the line's timestamp, start = end - elapsed).
pub(super) fn cache_write_windows(
    log: &str,
) -> Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> {
    log.lines()
        .filter(|line| line.contains("disk cache written"))
        .filter_map(|line| {
            let line: Value = serde_json::from_str(line).ok()?;
            let end = chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str()?)
                .ok()?
                .to_utc();
            let elapsed = line["elapsed"]
                .as_str()
                .or_else(|| line["fields"]["elapsed"].as_str())
                .and_then(debug_duration)?;
            Some((end - chrono::Duration::from_std(elapsed).ok()?, end))
        })
        .collect()
}

/// Parses a `Duration`'s `Debug` text (`1.5s`, `12.3ms`, `45µs`, `7ns`).
fn debug_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" | "us" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_statements_are_grouped() {
        let log = "2026 LOG:  duration: 25.1 ms  execute s1: UPDATE data_planes SET revision = $1 WHERE id = $2\n\
                   2026 LOG:  duration: 40.0 ms  execute s1: UPDATE data_planes SET revision = $1 WHERE id = $2\n\
                   2026 LOG:  duration: 21.0 ms  statement: COMMIT\n";
        assert_eq!(
            slow_statements(log),
            "2 × `UPDATE data_planes SET revision = $1…` (max 40 ms), 1 × `COMMIT…` (max 21 ms)"
        );
        assert_eq!(slow_statements(""), "none");
    }

    #[test]
    fn debug_durations_parse() {
        assert_eq!(debug_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(debug_duration("12ms"), Some(Duration::from_millis(12)));
        assert_eq!(debug_duration("250µs"), Some(Duration::from_micros(250)));
        assert_eq!(debug_duration("soon"), None);
    }

    #[test]
    fn cache_writes_are_counted_after_the_mark() {
        let log = "{\"fields\":{\"message\":\"disk cache written\",\"elapsed\":\"1s\"}}\n\
                   {\"message\":\"disk cache written\",\"elapsed\":\"250ms\"}\n";
        assert_eq!(cache_writes(log, 0), (2, Duration::from_millis(1250)));
        let second = log.find('\n').map_or(0, |at| at + 1);
        assert_eq!(cache_writes(log, second), (1, Duration::from_millis(250)));
    }
}
