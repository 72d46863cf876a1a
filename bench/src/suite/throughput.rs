//! Phase 2, throughput: `wrk` with random existing keys against the baseline, data plane 1 and
//! the control plane's database-backed verify, in turns, `--rounds` times; the ratios are taken
//! round by round (paired) and their median reported.

use std::time::Duration;

use crate::cluster::{Baseline, ControlPlane, DataPlane};
use crate::report::{Report, Verdict, thousands};
use crate::stats::median;
use crate::wrk::{self, Outcome};

use super::serving::verify_load;
use super::{LicenseSet, Options, Run, finish, join, progress, rates, record};

/// Measures and reports; returns the data plane's peak rate (the median of its rounds).
pub(super) async fn measure(
    run: &mut Run<'_>,
    cp: &ControlPlane,
    dps: &[DataPlane],
    baseline: &Baseline,
    set: &LicenseSet,
) -> anyhow::Result<f64> {
    let (options, started, script) = (run.options, run.started, run.script);
    let report = &mut *run.report;
    let load = |url: &str, duration: Duration| verify_load(options, &set.keys_file, url, duration);
    progress(started, "throughput: warming up");
    for url in [&baseline.url, &dps[0].public_url, &cp.admin_url] {
        wrk::run(&load(url, Duration::from_secs(2)), script, None).await?;
    }
    let mut baseline_rounds = Vec::new();
    let mut dp_rounds = Vec::new();
    let mut cp_rounds = Vec::new();
    for round in 0..options.rounds {
        let profiled = |name: &str, pid| {
            if round == 0 {
                record(options, name, pid)
            } else {
                None
            }
        };
        let recorder = profiled("baseline-verify", baseline.process.pid());
        let b = wrk::run(
            &load(&baseline.url, options.duration),
            script,
            baseline.process.pid(),
        )
        .await?;
        finish(report, recorder).await;
        let recorder = profiled("dp-verify", dps[0].process.pid());
        let d = wrk::run(
            &load(&dps[0].public_url, options.duration),
            script,
            dps[0].process.pid(),
        )
        .await?;
        finish(report, recorder).await;
        let recorder = profiled("cp-verify", cp.process.pid());
        let c = wrk::run(
            &load(&cp.admin_url, options.duration),
            script,
            cp.process.pid(),
        )
        .await?;
        finish(report, recorder).await;
        progress(
            started,
            &format!(
                "throughput round {}: baseline {:.0}/s, data plane {:.0}/s, control plane {:.0}/s",
                round + 1,
                b.rate(),
                d.rate(),
                c.rate()
            ),
        );
        baseline_rounds.push(b);
        dp_rounds.push(d);
        cp_rounds.push(c);
    }
    report_throughput(report, options, &baseline_rounds, &dp_rounds, &cp_rounds);
    Ok(median(
        &dp_rounds.iter().map(Outcome::rate).collect::<Vec<_>>(),
    ))
}

fn report_throughput(
    report: &mut Report,
    options: &Options,
    baseline: &[Outcome],
    dp: &[Outcome],
    cp: &[Outcome],
) {
    let load = format!(
        "wrk -t{} -c{}, {} s × {} rounds, random existing keys",
        options.threads,
        options.connections,
        options.duration.as_secs(),
        options.rounds
    );
    let ratio = |a: &[Outcome], b: &[Outcome]| {
        median(
            &a.iter()
                .zip(b)
                .map(|(a, b)| a.rate() / b.rate())
                .collect::<Vec<_>>(),
        )
    };
    let dp_rate = median(&rates(dp));
    let baseline_rate = median(&rates(baseline));
    let cp_rate = median(&rates(cp));
    let vs_baseline = ratio(dp, baseline);
    let vs_cp = ratio(dp, cp);
    report.row(
        format!(
            "data-plane verify throughput ({} licenses; {load})",
            thousands(options.licenses as u64)
        ),
        format!("{} req/s", thousands(dp_rate as u64)),
        "—",
        Verdict::Info,
    );
    report.row(
        "baseline: bare axum handler, fixed JSON of the same size",
        format!("{} req/s", thousands(baseline_rate as u64)),
        "—",
        Verdict::Info,
    );
    report.row(
        "data plane ÷ baseline (paired rounds, median)",
        format!("{vs_baseline:.2}×"),
        "≥ 0.80×",
        Verdict::from_bool(vs_baseline >= 0.8),
    );
    report.row(
        "control plane database-backed verify",
        format!("{} req/s", thousands(cp_rate as u64)),
        "—",
        Verdict::Info,
    );
    report.row(
        "data plane ÷ control plane (paired rounds, median)",
        format!("{vs_cp:.1}×"),
        "≥ 20×",
        Verdict::from_bool(vs_cp >= 20.0),
    );
    let describe = |name: &str, rounds: &[Outcome]| {
        format!(
            "{name}: {} req/s per round; server CPU per request {}; machine busy {}; errors {}",
            join(rounds.iter().map(|o| thousands(o.rate() as u64))),
            join(rounds.iter().map(|o| {
                o.server_cpu_us_per_request
                    .map_or_else(|| "?".to_owned(), |us| format!("{us:.1} µs"))
            })),
            join(rounds.iter().map(|o| {
                o.machine_busy
                    .map_or_else(|| "?".to_owned(), |busy| format!("{:.0}%", busy * 100.0))
            })),
            rounds.iter().map(Outcome::errors).sum::<u64>()
        )
    };
    report.detail(describe("Baseline", baseline));
    report.detail(describe("Data plane", dp));
    report.detail(format!(
        "{} (PostgreSQL's CPU not included)",
        describe("Control plane", cp)
    ));
    report.detail(format!(
        "Ceiling of the second ratio on this machine: baseline ÷ control plane = {:.1}× \
         (what a data plane as fast as the bare handler would reach).",
        ratio(baseline, cp)
    ));
}
