//! Phase 3, latency at half the data plane's peak rate: each connection pauses 1 ms after every
//! answer (wrk's `delay` hook) and the connection count is calibrated to hit the rate; the bare
//! baseline under the same load, and the data plane at a quarter of the peak, for comparison.

use std::time::Duration;

use anyhow::Context;

use crate::cluster::{Baseline, DataPlane};
use crate::report::{Report, Verdict, thousands};
use crate::stats::median;
use crate::wrk::{self, Load, Outcome};

use super::serving::verify_load;
use super::{LicenseSet, Run, join, progress};

/// Measures and reports the latency at half of `peak` requests/s.
pub(super) async fn measure(
    run: &mut Run<'_>,
    dps: &[DataPlane],
    baseline: &Baseline,
    set: &LicenseSet,
    peak: f64,
) -> anyhow::Result<()> {
    let (options, started, script) = (run.options, run.started, run.script);
    let report = &mut *run.report;
    let load = |url: &str, duration: Duration| verify_load(options, &set.keys_file, url, duration);
    progress(
        started,
        &format!("latency: calibrating to {:.0} requests/s", peak / 2.0),
    );
    let dp_load = load(&dps[0].public_url, options.duration);
    let baseline_load = load(&baseline.url, options.duration);
    let mut dp_connections = calibrate(&dp_load, script, peak / 2.0).await?;
    let mut baseline_connections = dp_connections;
    let mut latency_rounds = Vec::new();
    let mut baseline_latency = Vec::new();
    for _ in 0..options.rounds {
        let outcome = paced_round(&dp_load, script, peak / 2.0, &mut dp_connections).await?;
        latency_rounds.push((f64::from(dp_connections), outcome));
        baseline_latency.push(
            paced_round(
                &baseline_load,
                script,
                peak / 2.0,
                &mut baseline_connections,
            )
            .await?,
        );
    }
    report_latency(report, peak, &latency_rounds, &baseline_latency);
    let mut connections = calibrate(&dp_load, script, peak / 4.0).await?;
    let quarter = paced_round(&dp_load, script, peak / 4.0, &mut connections).await?;
    {
        let outcome = &quarter;
        report.detail(format!(
            "For comparison, at a quarter of the peak ({} req/s, {connections} connections): \
             p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms; machine busy {}.",
            thousands(outcome.rate() as u64),
            outcome.p50_us / 1000.0,
            outcome.p99_us / 1000.0,
            outcome.p999_us / 1000.0,
            outcome
                .machine_busy
                .map_or_else(|| "?".to_owned(), |busy| format!("{:.0}%", busy * 100.0))
        ));
    }
    Ok(())
}

/// One round of `load` paced to about `rate` requests/s: run with `connections` pausing 1 ms
/// after every answer; when the rate achieved is more than 10% off (wrk's pause has a
/// granularity of 1 ms, so the rate per connection drifts with the latency), adjust the
/// connections and run again, at most four times; the closest run counts.
async fn paced_round(
    load: &Load,
    script: &std::path::Path,
    rate: f64,
    connections: &mut u32,
) -> anyhow::Result<Outcome> {
    let mut best: Option<Outcome> = None;
    let off = |outcome: &Outcome| (outcome.rate() - rate).abs() / rate;
    for _ in 0..4 {
        let run = Load {
            connections: *connections,
            delay_ms: 1,
            ..load.clone()
        };
        let outcome = wrk::run(&run, script, None).await?;
        let close = off(&outcome) <= 0.10;
        if outcome.rate() > 0.0 && !close {
            *connections =
                ((f64::from(*connections) * rate / outcome.rate()).round() as u32).clamp(1, 512);
        }
        if best.as_ref().is_none_or(|known| off(&outcome) < off(known)) {
            best = Some(outcome);
        }
        if close {
            break;
        }
    }
    best.context("no paced run")
}

/// How many connections, each pausing 1 ms after every answer, make `full`'s target serve
/// about `rate` requests/s (three short trial runs).
async fn calibrate(full: &Load, script: &std::path::Path, rate: f64) -> anyhow::Result<u32> {
    let mut connections = ((rate / 900.0).round() as u32).clamp(1, 512);
    for _ in 0..3 {
        let trial = Load {
            connections,
            delay_ms: 1,
            duration: Duration::from_secs(2),
            ..full.clone()
        };
        let outcome = wrk::run(&trial, script, None).await?;
        if outcome.rate() > 0.0 {
            connections =
                ((f64::from(connections) * rate / outcome.rate()).round() as u32).clamp(1, 512);
        }
    }
    Ok(connections)
}

fn report_latency(report: &mut Report, peak: f64, rounds: &[(f64, Outcome)], baseline: &[Outcome]) {
    let field =
        |get: fn(&Outcome) -> f64| median(&rounds.iter().map(|(_, o)| get(o)).collect::<Vec<_>>());
    let p50 = field(|o| o.p50_us) / 1000.0;
    let p99 = field(|o| o.p99_us) / 1000.0;
    let p999 = field(|o| o.p999_us) / 1000.0;
    let rate = field(Outcome::rate);
    report.row(
        format!(
            "verify latency on the data plane at half its peak ({} req/s achieved of {} targeted)",
            thousands(rate as u64),
            thousands((peak / 2.0) as u64)
        ),
        format!(
            "p50 {p50:.3} ms, p99 {p99:.3} ms, p99.9 {p999:.3} ms (bare baseline under the same load: p50 {:.3} ms, p99 {:.3} ms)",
            median(&baseline.iter().map(|o| o.p50_us).collect::<Vec<_>>()) / 1000.0,
            median(&baseline.iter().map(|o| o.p99_us).collect::<Vec<_>>()) / 1000.0,
        ),
        "p99 ≤ 1 ms",
        Verdict::from_bool(p99 <= 1.0),
    );
    report.detail(format!(
        "Latency rounds ({} connections pausing 1 ms after each answer): p99 {}; \
         rates {}; machine busy {}. The baseline under the same load: p99 {}; rates {}.",
        join(rounds.iter().map(|(c, _)| c.to_string())),
        join(
            rounds
                .iter()
                .map(|(_, o)| format!("{:.3} ms", o.p99_us / 1000.0))
        ),
        join(rounds.iter().map(|(_, o)| thousands(o.rate() as u64))),
        join(rounds.iter().map(|(_, o)| {
            o.machine_busy
                .map_or_else(|| "?".to_owned(), |busy| format!("{:.0}%", busy * 100.0))
        })),
        join(
            baseline
                .iter()
                .map(|o| format!("{:.3} ms", o.p99_us / 1000.0))
        ),
        join(baseline.iter().map(|o| thousands(o.rate() as u64))),
    ));
}
