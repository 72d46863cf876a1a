//! Phase 5, propagation: `--changes` admin writes per round, each acknowledged by the control
//! plane, then every data plane polled (verify, no pause) until it serves the new value; the
//! CPU it cost each process, where the time went (the control plane's "deltas sent" lines),
//! PostgreSQL's slow statements and the data planes' cache writes meanwhile; then one more round
//! on a quiet cluster.

use std::time::{Duration, Instant};

use anyhow::bail;
use reqwest::Method;
use serde_json::{Value, json};
use test_support::pg::PgServer;
use test_support::process::CpuMeter;
use tokio::task::JoinSet;

use crate::cluster::{ControlPlane, DataPlane, Setup};
use crate::report::{Verdict, thousands};
use crate::stats::{self, Latencies, median};

use super::logs::{cache_write_windows, cache_writes, slow_statements};
use super::{Run, finish, join, progress, record};

/// Measures and reports the propagation to `dps`, changing licenses among `keys`.
pub(super) async fn measure(
    run: &mut Run<'_>,
    cp: &ControlPlane,
    pg: &PgServer,
    dps: &[DataPlane],
    keys: &[String],
) -> anyhow::Result<()> {
    let (options, setup, started) = (run.options, run.setup, run.started);
    let report = &mut *run.report;
    let mut propagation = Vec::new();
    let log_marks: Vec<usize> = dps.iter().map(|dp| dp.process.log_text().len()).collect();
    let mut metered: Vec<(&str, u32, bool)> = Vec::new();
    if let Some(pid) = cp.process.pid() {
        metered.push(("control plane", pid, false));
    }
    for (dp, name) in dps.iter().zip(["dp-1", "dp-2", "dp-3"]) {
        if let Some(pid) = dp.process.pid() {
            metered.push((name, pid, false));
        }
    }
    if let Some(pid) = pg.postmaster_pid() {
        metered.push(("PostgreSQL", pid, true));
    }
    let meter = CpuMeter::start(&metered);
    let cp_log_mark = cp.process.log_text().len();
    let pg_log = pg.log_path();
    let pg_log_mark = std::fs::read_to_string(&pg_log).map_or(0, |log| log.len());
    let mut all_changes = Vec::new();
    for round in 0..options.rounds {
        let recorders = if round == 0 {
            vec![
                record(options, "dp-1-propagation", dps[0].process.pid()),
                record(options, "cp-propagation", cp.process.pid()),
            ]
        } else {
            Vec::new()
        };
        let timed = propagation_round(setup, cp, dps, keys, options.changes, round).await?;
        for recorder in recorders {
            finish(report, recorder).await;
        }
        let delays: Vec<Duration> = timed.iter().map(|t| t.delay).collect();
        all_changes.extend(timed);
        let figures = Latencies::of(&delays);
        progress(
            started,
            &format!(
                "propagation round {}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                round + 1,
                figures.p50,
                figures.p99,
                figures.max
            ),
        );
        propagation.push(figures);
    }
    let figures = Latencies::median_of(&propagation);
    report.row(
        format!(
            "propagation: admin write acknowledged → served by all of 3 data planes ({} changes × {} rounds)",
            thousands(options.changes as u64),
            options.rounds
        ),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            figures.p50, figures.p99, figures.max
        ),
        "p99 ≤ 50 ms",
        Verdict::from_bool(figures.p99 <= 50.0),
    );
    report.detail(format!(
        "Propagation p99 per round: {}. {}.",
        join(propagation.iter().map(|l| format!("{:.2} ms", l.p99))),
        meter.summary()
    ));
    let cp_log = cp.process.log_text();
    if let Some(split) = split_delays(&all_changes, cp_log.get(cp_log_mark..).unwrap_or_default()) {
        report.detail(format!("{split}."));
    }
    let pg_tail = std::fs::read_to_string(&pg_log)
        .ok()
        .and_then(|log| log.get(pg_log_mark..).map(str::to_owned))
        .unwrap_or_default();
    report.detail(format!(
        "PostgreSQL during the propagation rounds (its log): {} automatic vacuums, {} automatic \
         analyzes, {} checkpoints, {} deadlocks; statements of 20 ms or more: {}.",
        pg_tail.matches("automatic vacuum").count(),
        pg_tail.matches("automatic analyze").count(),
        pg_tail.matches("checkpoint complete").count(),
        pg_tail.matches("deadlock detected").count(),
        slow_statements(&pg_tail)
    ));
    let csv: String = std::iter::once("round,revision,acknowledged_at,delay_ms\n".to_owned())
        .chain(all_changes.iter().enumerate().map(|(n, change)| {
            format!(
                "{},{},{},{:.3}\n",
                n / options.changes + 1,
                change.revision,
                change.acknowledged_at.to_rfc3339(),
                stats::ms(change.delay)
            )
        }))
        .collect();
    std::fs::write(options.work_dir.join("propagation.csv"), csv)?;
    let windows: Vec<_> = dps
        .iter()
        .flat_map(|dp| cache_write_windows(&dp.process.log_text()))
        .collect();
    let overlaps = |change: &Timed| {
        let end =
            change.acknowledged_at + chrono::Duration::from_std(change.delay).unwrap_or_default();
        windows
            .iter()
            .any(|(from, to)| *from < end && change.acknowledged_at < *to)
    };
    let (slow, fast): (Vec<&Timed>, Vec<&Timed>) = all_changes
        .iter()
        .partition(|change| change.delay > Duration::from_millis(50));
    report.detail(format!(
        "Of the {} changes slower than 50 ms, {} overlapped a data plane's disk-cache write; of \
         the other {}, {} ({:.0}%).",
        slow.len(),
        slow.iter().filter(|change| overlaps(change)).count(),
        fast.len(),
        fast.iter().filter(|change| overlaps(change)).count(),
        100.0 * fast.iter().filter(|change| overlaps(change)).count() as f64
            / fast.len().max(1) as f64
    ));
    report.detail(format!(
        "Disk-cache writes of the data planes during the propagation rounds: {}.",
        join(dps.iter().zip(&log_marks).map(|(dp, mark)| {
            let (count, took) = cache_writes(&dp.process.log_text(), *mark);
            format!(
                "{} {count} writes taking {:.1} s",
                dp.name,
                took.as_secs_f64()
            )
        }))
    ));

    // The same once more when the data planes' telemetry from the load rounds has been
    // recorded (two intervals): what propagation costs on a quiet cluster.
    progress(
        started,
        "propagation: waiting 25 s for telemetry to settle, then a quiet round",
    );
    tokio::time::sleep(Duration::from_secs(25)).await;
    let pg_log_mark = std::fs::read_to_string(&pg_log).map_or(0, |log| log.len());
    let quiet = propagation_round(setup, cp, dps, keys, options.changes, options.rounds).await?;
    let quiet_figures = Latencies::of(&quiet.iter().map(|t| t.delay).collect::<Vec<_>>());
    let pg_tail = std::fs::read_to_string(&pg_log)
        .ok()
        .and_then(|log| log.get(pg_log_mark..).map(str::to_owned))
        .unwrap_or_default();
    report.detail(format!(
        "Propagation on a quiet cluster (one more round of {} changes, 25 s after the load \
         rounds' telemetry): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; PostgreSQL statements of \
         20 ms or more meanwhile: {}.",
        thousands(options.changes as u64),
        quiet_figures.p50,
        quiet_figures.p99,
        quiet_figures.max,
        slow_statements(&pg_tail)
    ));
    if let Some(split) = split_delays(&quiet, &cp.process.log_text()) {
        report.detail(format!("Quiet round: {split}."));
    }
    Ok(())
}

/// Polls `base_url`'s verify for `key` until its `maxActivations` is `value`; returns the time
/// since `since`.
pub(super) async fn wait_visible(
    client: reqwest::Client,
    base_url: String,
    key: String,
    value: i64,
    since: Instant,
) -> anyhow::Result<Duration> {
    let url = format!("{base_url}/api/licenses/verify");
    let body = json!({ "licenseKey": key }).to_string();
    loop {
        let answer = client
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await?;
        let seen: Value = answer.json().await?;
        if seen["maxActivations"].as_i64() == Some(value) {
            return Ok(since.elapsed());
        }
        if since.elapsed() > Duration::from_secs(10) {
            bail!("{base_url} did not serve maxActivations {value} for {key} within 10 s");
        }
    }
}

/// `changes` admin writes, one after the other, each timed from its acknowledgement until every
/// data plane serves it.
async fn propagation_round(
    setup: &Setup,
    cp: &ControlPlane,
    dps: &[DataPlane],
    keys: &[String],
    changes: usize,
    round: usize,
) -> anyhow::Result<Vec<Timed>> {
    let mut delays = Vec::with_capacity(changes);
    for change in 0..changes {
        let serial = round * changes + change;
        let key = &keys[serial % keys.len()];
        let value = 1_000 + serial as i64;
        let answer = setup
            .admin_call(
                cp,
                Method::PUT,
                &format!("/api/licenses/{key}"),
                json!({ "maxActivations": value }),
                200,
            )
            .await?;
        let acknowledged = Instant::now();
        let acknowledged_at = chrono::Utc::now();
        let mut waits = JoinSet::new();
        for dp in dps {
            waits.spawn(wait_visible(
                setup.client.clone(),
                dp.public_url.clone(),
                key.clone(),
                value,
                acknowledged,
            ));
        }
        let mut slowest = Duration::ZERO;
        while let Some(waited) = waits.join_next().await {
            slowest = slowest.max(waited??);
        }
        delays.push(Timed {
            revision: answer["revision"].as_i64().unwrap_or(0),
            acknowledged_at,
            delay: slowest,
        });
    }
    Ok(delays)
}

/// One admin write of a propagation round.
#[derive(Debug, Clone, Copy)]
struct Timed {
    /// The revision the write took.
    revision: i64,
    acknowledged_at: chrono::DateTime<chrono::Utc>,
    /// Acknowledged → served by every data plane.
    delay: Duration,
}

/// Splits the slowest changes' delay at the moment the control plane sent each of them to the
/// last data plane (its debug log line "deltas sent": after, revision, timestamp): how much came
/// before (notification, change-feed queries) and after (network, apply, serving).
fn split_delays(changes: &[Timed], cp_log: &str) -> Option<String> {
    let sends: Vec<(i64, i64, chrono::DateTime<chrono::Utc>)> = cp_log
        .lines()
        .filter(|line| line.contains("deltas sent"))
        .filter_map(|line| {
            let line: Value = serde_json::from_str(line).ok()?;
            let field = |name: &str| {
                if line[name].is_null() {
                    line["fields"][name].clone()
                } else {
                    line[name].clone()
                }
            };
            let at = chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str()?).ok()?;
            Some((
                field("after").as_i64()?,
                field("revision").as_i64()?,
                at.to_utc(),
            ))
        })
        .collect();
    if sends.is_empty() {
        return None;
    }
    // (until the first data plane was sent it, until the last was, from there until served)
    let split = |change: &Timed| -> Option<(f64, f64, f64)> {
        let times: Vec<chrono::DateTime<chrono::Utc>> = sends
            .iter()
            .filter(|(after, revision, _)| *after < change.revision && change.revision <= *revision)
            .map(|(_, _, at)| *at)
            .collect();
        let since = |at: chrono::DateTime<chrono::Utc>| {
            (at - change.acknowledged_at)
                .num_microseconds()
                .map(|us| us as f64 / 1000.0)
        };
        let first = since(*times.iter().min()?)?;
        let last = since(*times.iter().max()?)?;
        Some((first, last, stats::ms(change.delay) - last))
    };
    let mut sorted: Vec<&Timed> = changes.iter().collect();
    sorted.sort_by_key(|change| change.delay);
    let slowest: Vec<(f64, f64, f64)> = sorted
        .iter()
        .rev()
        .take((changes.len() / 100).max(1))
        .filter_map(|change| split(change))
        .collect();
    let typical: Vec<(f64, f64, f64)> = sorted.iter().filter_map(|change| split(change)).collect();
    let mean = |parts: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| {
        parts.iter().map(pick).sum::<f64>() / parts.len().max(1) as f64
    };
    Some(format!(
        "Where propagation time goes (the control plane's \"deltas sent\" log lines against the \
         acknowledgements): the slowest 1% of changes were sent by the control plane to the \
         first data plane {:.1} ms and to the last {:.1} ms after the acknowledgement (means), \
         and served by all three {:.1} ms after that; the median change {:.1}, {:.1} and {:.1} ms",
        mean(&slowest, |p| p.0),
        mean(&slowest, |p| p.1),
        mean(&slowest, |p| p.2),
        median(&typical.iter().map(|p| p.0).collect::<Vec<_>>()),
        median(&typical.iter().map(|p| p.1).collect::<Vec<_>>()),
        median(&typical.iter().map(|p| p.2).collect::<Vec<_>>()),
    ))
}
