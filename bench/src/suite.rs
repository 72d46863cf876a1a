//! The benchmark suite, in the order it runs (DESIGN §9, issue 6):
//!
//! 1. **Setup**: a throwaway PostgreSQL, the control plane, a product, a customer, a
//!    LicenseSpring credential, `--licenses` (100,000) licenses seeded by SQL with a device each,
//!    three data planes synced over mTLS, and the baseline server answering the exact bytes of
//!    a data-plane verify answer.
//! 2. **Throughput**: `wrk` with random existing keys against the baseline, data plane 1 and the
//!    control plane's database-backed verify, in turns, `--rounds` times; the ratios are taken
//!    round by round (paired) and their median reported.
//! 3. **Latency** at half the data plane's peak rate: each connection pauses 1 ms after every
//!    answer (wrk's `delay` hook) and the connection count is calibrated to hit the rate.
//! 4. **check_license** (LicenseSpring, HMAC-authenticated, signed answer) against verify in
//!    turns; skipped when the endpoint answers 404 `not_found`.
//! 5. **Propagation**: `--changes` admin writes per round, each acknowledged by the control
//!    plane, then every data plane polled (verify, no pause) until it serves the new value.
//! 6. **Activation**: new-device `validate` through data plane 1 (DP → CP → PostgreSQL → DP).
//! 7. **A million licenses**: the data planes are stopped, the set is topped up to `--million`
//!    by SQL, and a fresh data plane syncs through a byte-counting proxy, `--rounds` times:
//!    time from process start to its `/status` revision equal to the control plane's, bytes the
//!    control plane sent, resident memory. Then one-license changes acknowledged → served on it.
//! 8. **Resume**: that data plane is stopped (SIGTERM, cache flushed), `--changes` writes happen,
//!    it restarts: bytes and catch-up time, three times, plus once with a tenth of the changes
//!    to show the cost is proportional to the changes.
//! 9. **Applying one change at a million**, in process: the data plane's own `Store` with a
//!    million licenses, one-license deltas timed one by one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;

use crate::cluster::{ControlPlane, DataPlane, Setup, release_bin_dir};
use crate::profile::Recorder;
use crate::report::{Report, Verdict, mib, thousands};
use crate::stats::{self, Latencies, median};
use crate::synthetic::DEVICE;
use crate::wrk::{self, Load, Mode, Outcome};
use crate::{seed, synthetic};
use test_support::pg::{PgOptions, PgServer};
use test_support::process::CpuMeter;
use test_support::proxy::Proxy;

/// What to run, and how hard.
#[derive(Debug, Clone)]
pub struct Options {
    pub rounds: usize,
    /// Length of one load round.
    pub duration: Duration,
    pub connections: u32,
    pub threads: u32,
    /// Licenses the first data planes hold.
    pub licenses: usize,
    /// Licenses of the large set (0: skip that part).
    pub million: usize,
    /// Admin writes per propagation and resume round.
    pub changes: usize,
    /// New-device activations per round.
    pub activations: usize,
    /// The run directory (wiped first).
    pub work_dir: PathBuf,
    /// Record CPU profiles (perf) of the first round of each phase.
    pub profile: bool,
    /// Seed and measure only the million-license figures (for working on the sync path).
    pub only_million: bool,
}

/// Starts a profile of `pid` when profiling is on.
fn record(options: &Options, name: &str, pid: Option<u32>) -> Option<Recorder> {
    if !options.profile {
        return None;
    }
    // Call chains where the question is which of our functions the time is under.
    let call_graph = !name.starts_with("cp-verify") && !name.starts_with("cp-propagation");
    Recorder::start(name, pid?, &options.work_dir, call_graph)
}

/// Stops a profile and adds its summary to the details.
async fn finish(report: &mut Report, recorder: Option<Recorder>) {
    if let Some(recorder) = recorder {
        if let Some(summary) = recorder.finish(12).await {
            report.detail(summary);
        }
    }
}

/// Prints a progress line on stderr.
fn progress(started: Instant, text: &str) {
    eprintln!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
}

/// Runs everything and fills `report`.
pub async fn run(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = options.work_dir.clone();
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the last run's {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("load.lua");
    std::fs::write(&script, wrk::SCRIPT)?;

    progress(started, "starting PostgreSQL");
    let mut pg = PgServer::start(PgOptions::for_benchmarks(&dir.join("pg"))).await?;
    let database_url = pg.create_database("licenses").await?;
    report.fact(
        "PostgreSQL",
        format!("{} (defaults: fsync and synchronous_commit on)", pg.version),
    );
    let setup = Setup::new(release_bin_dir()?, dir.clone(), database_url.clone())?;
    let mut cp = setup.start_control_plane().await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&database_url)
        .await?;

    let product = setup
        .admin_call(
            &cp,
            Method::POST,
            "/api/products",
            json!({ "code": "bench", "name": "Benchmark app" }),
            201,
        )
        .await?;
    let customer = setup
        .admin_call(
            &cp,
            Method::POST,
            "/api/customers",
            json!({ "email": "bench@example.com" }),
            201,
        )
        .await?;
    let credential = setup
        .admin_call(
            &cp,
            Method::POST,
            "/api/credentials",
            json!({ "name": "bench", "products": ["bench"] }),
            201,
        )
        .await
        .ok();
    let product_id = product["id"].as_str().context("product id")?.parse()?;
    let customer_id = customer["id"].as_str().context("customer id")?.parse()?;

    progress(
        started,
        &format!("seeding {} licenses", thousands(options.licenses as u64)),
    );
    let seeding = Instant::now();
    let seeded = seed::licenses(
        &pool,
        product_id,
        customer_id,
        options.licenses,
        Some(DEVICE),
    )
    .await?;
    seed::analyze(&pool).await?;
    report.detail(format!(
        "Seeded {} licenses (with one device each) by COPY in {:.1} s.",
        thousands(options.licenses as u64),
        seeding.elapsed().as_secs_f64()
    ));
    let keys = Arc::new(seeded.keys);
    let keys_file = dir.join("keys.txt");
    std::fs::write(&keys_file, keys.join("\n") + "\n")?;

    if options.only_million {
        report.detail("Serving figures not measured (--only-million).".to_owned());
    } else {
        serving(
            report,
            options,
            &setup,
            &mut cp,
            &pg,
            credential.as_ref(),
            &keys,
            &keys_file,
            &script,
            started,
        )
        .await?;
    }

    // A million.
    if options.million > options.licenses {
        million(
            report,
            options,
            &setup,
            &mut cp,
            &pool,
            product_id,
            customer_id,
            pg.postmaster_pid(),
            started,
        )
        .await?;
    } else {
        report.row(
            "a million licenses",
            "not run (--million 0)",
            "≤ 10 s, ≤ 1 GB, ≤ 1 ms",
            Verdict::Skipped,
        );
    }
    cp.process.stop(Duration::from_secs(15)).await;
    pool.close().await;
    pg.stop().await;

    if options.million > 0 {
        progress(
            started,
            "applying one change to a store of a million licenses, in process",
        );
        store_apply(report, options).await?;
    }
    progress(started, "done");
    report.fact(
        "suite run time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    Ok(())
}

/// The figures of three data planes holding `keys`: throughput against the baseline and the
/// control plane, latency, check_license, propagation, activation. Stops its data planes and
/// baseline when done.
#[allow(clippy::too_many_arguments)]
async fn serving(
    report: &mut Report,
    options: &Options,
    setup: &Setup,
    cp: &mut ControlPlane,
    pg: &PgServer,
    credential: Option<&Value>,
    keys: &Arc<Vec<String>>,
    keys_file: &std::path::Path,
    script: &std::path::Path,
    started: Instant,
) -> anyhow::Result<()> {
    progress(started, "starting three data planes");
    let mut dps = Vec::new();
    for n in 1..=3 {
        dps.push(
            setup
                .spawn_data_plane(&format!("dp-{n}"), cp.cluster_addr)
                .await?,
        );
    }
    let revision = setup.cp_revision(cp).await?;
    for dp in &mut dps {
        let since = dp.process.started;
        setup
            .wait_revision(
                dp,
                revision,
                since,
                Duration::from_millis(50),
                Duration::from_secs(180),
            )
            .await?;
    }
    let (status, answer) = setup.verify(&dps[0].public_url, &keys[0]).await?;
    ensure!(
        status == 200,
        "the data plane does not know a seeded key: {status} {}",
        String::from_utf8_lossy(&answer)
    );
    let baseline = setup.start_baseline(&answer).await?;
    report.detail(format!(
        "A verify answer is {} bytes; the baseline answers those bytes.",
        answer.len()
    ));

    let load = |url: &str, duration: Duration| Load {
        url: url.to_owned(),
        mode: Mode::Verify,
        keys: keys_file.to_path_buf(),
        threads: options.threads,
        connections: options.connections,
        duration,
        delay_ms: 0,
    };

    // Throughput.
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

    // Latency at half the peak.
    let peak = median(&dp_rounds.iter().map(Outcome::rate).collect::<Vec<_>>());
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

    // check_license.
    progress(started, "check_license");
    check_license(
        report, options, setup, &dps[0], credential, keys, keys_file, script,
    )
    .await?;

    // Propagation.
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
        let timed = propagation_round(setup, cp, &dps, keys, options.changes, round).await?;
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
    let quiet = propagation_round(setup, cp, &dps, keys, options.changes, options.rounds).await?;
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

    // Activation.
    let mut activation = Vec::new();
    for round in 0..options.rounds {
        let times = activation_round(setup, &dps[0], keys, options.activations, round).await?;
        let figures = Latencies::of(&times);
        progress(
            started,
            &format!(
                "activation round {}: p50 {:.2} ms, p99 {:.2} ms",
                round + 1,
                figures.p50,
                figures.p99
            ),
        );
        activation.push(figures);
    }
    let figures = Latencies::median_of(&activation);
    report.row(
        format!(
            "activation through a data plane: new-device validate round trip ({} × {} rounds)",
            options.activations, options.rounds
        ),
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            figures.p50, figures.p99, figures.max
        ),
        "p99 ≤ 25 ms",
        Verdict::from_bool(figures.p99 <= 25.0),
    );

    for dp in &mut dps {
        dp.process.stop(Duration::from_secs(15)).await;
    }
    let mut baseline = baseline;
    baseline.process.stop(Duration::from_secs(5)).await;
    Ok(())
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn rates(rounds: &[Outcome]) -> Vec<f64> {
    rounds.iter().map(Outcome::rate).collect()
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

/// LicenseSpring's request signature for `date`.
fn authorization(api_key: &str, shared_key: &str, date: &str) -> anyhow::Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(shared_key.as_bytes())
        .map_err(|_| anyhow::anyhow!("bad HMAC key"))?;
    mac.update(format!("licenseSpring\ndate: {date}").as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    Ok(format!(
        "algorithm=\"hmac-sha256\",headers=\"date\",signature=\"{signature}\",apiKey=\"{api_key}\""
    ))
}

#[allow(clippy::too_many_arguments)]
async fn check_license(
    report: &mut Report,
    options: &Options,
    setup: &Setup,
    dp: &DataPlane,
    credential: Option<&Value>,
    keys: &[String],
    keys_file: &std::path::Path,
    script: &std::path::Path,
) -> anyhow::Result<()> {
    const FIGURE: &str = "LicenseSpring check_license throughput (HMAC auth, signed answer)";
    let skip = |report: &mut Report, why: &str| {
        report.row(
            FIGURE,
            format!("placeholder: {why}"),
            "report it, and its cost vs verify",
            Verdict::Skipped,
        );
    };
    let Some(credential) = credential else {
        skip(report, "the control plane has no /api/credentials");
        return Ok(());
    };
    let (Some(api_key), Some(shared_key)) = (
        credential["apiKey"].as_str(),
        credential["sharedKey"].as_str(),
    ) else {
        skip(report, "the credential answer has no apiKey/sharedKey");
        return Ok(());
    };
    let signed = || -> anyhow::Result<(String, String)> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let authorization = authorization(api_key, shared_key, &date)?;
        Ok((date, authorization))
    };
    let (date, auth) = signed()?;
    let probe = setup
        .client
        .get(format!(
            "{}/api/v4/check_license?product=bench&license_key={}&hardware_id={DEVICE}",
            dp.public_url, keys[0]
        ))
        .header("Date", &date)
        .header("Authorization", &auth)
        .send()
        .await?;
    let status = probe.status().as_u16();
    let body: Value = probe.json().await.unwrap_or(Value::Null);
    if status == 404 && body["code"] == "not_found" {
        skip(
            report,
            "the data plane answers 404 (endpoint not built yet)",
        );
        return Ok(());
    }
    if status != 200 {
        skip(report, &format!("the probe answered {status}: {body}"));
        return Ok(());
    }
    let mut verify = Vec::new();
    let mut check = Vec::new();
    for _ in 0..options.rounds {
        let (date, authorization) = signed()?;
        let base = Load {
            url: dp.public_url.clone(),
            mode: Mode::Verify,
            keys: keys_file.to_owned(),
            threads: options.threads,
            connections: options.connections,
            duration: options.duration,
            delay_ms: 0,
        };
        verify.push(wrk::run(&base, script, dp.process.pid()).await?);
        let signed_load = Load {
            mode: Mode::Check {
                product: "bench".to_owned(),
                device: DEVICE.to_owned(),
                date,
                authorization,
            },
            ..base
        };
        check.push(wrk::run(&signed_load, script, dp.process.pid()).await?);
    }
    let ratio = median(
        &check
            .iter()
            .zip(&verify)
            .map(|(c, v)| c.rate() / v.rate())
            .collect::<Vec<_>>(),
    );
    let errors: u64 = check.iter().map(Outcome::errors).sum();
    report.row(
        FIGURE,
        format!(
            "{} req/s = {ratio:.2}× verify in the same rounds{}",
            thousands(median(&rates(&check)) as u64),
            if errors > 0 {
                format!(" ({errors} errors)")
            } else {
                String::new()
            }
        ),
        "report it, and its cost vs verify",
        Verdict::Info,
    );
    report.detail(format!(
        "check_license: {} req/s per round (verify alongside: {}); server CPU per request {} (verify {}).",
        join(check.iter().map(|o| thousands(o.rate() as u64))),
        join(verify.iter().map(|o| thousands(o.rate() as u64))),
        join(check.iter().map(|o| o.server_cpu_us_per_request.map_or("?".to_owned(), |u| format!("{u:.1} µs")))),
        join(verify.iter().map(|o| o.server_cpu_us_per_request.map_or("?".to_owned(), |u| format!("{u:.1} µs")))),
    ));
    Ok(())
}

/// Polls `base_url`'s verify for `key` until its `maxActivations` is `value`; returns the time
/// since `since`.
async fn wait_visible(
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

/// `count` new devices validated through `dp`, one after the other, on distinct licenses.
async fn activation_round(
    setup: &Setup,
    dp: &DataPlane,
    keys: &[String],
    count: usize,
    round: usize,
) -> anyhow::Result<Vec<Duration>> {
    let url = format!("{}/api/licenses/validate", dp.public_url);
    let mut times = Vec::with_capacity(count);
    for n in 0..count {
        let serial = round * count + n;
        // Away from the licenses the propagation rounds changed.
        let key = &keys[(keys.len() / 2 + serial) % keys.len()];
        let body = json!({
            "licenseKey": key,
            "deviceId": format!("bench-new-{round}-{n}"),
            "deviceName": "bench",
        });
        let started = Instant::now();
        let answer = setup.client.post(&url).json(&body).send().await?;
        let status = answer.status().as_u16();
        let text = answer.text().await?;
        times.push(started.elapsed());
        ensure!(status == 200, "validate answered {status}: {text}");
    }
    Ok(times)
}

/// The million-license part: seed, fresh syncs, one change, resume.
#[allow(clippy::too_many_arguments)]
async fn million(
    report: &mut Report,
    options: &Options,
    setup: &Setup,
    cp: &mut ControlPlane,
    pool: &sqlx::PgPool,
    product_id: uuid::Uuid,
    customer_id: uuid::Uuid,
    postmaster: Option<u32>,
    started: Instant,
) -> anyhow::Result<()> {
    let more = options.million - options.licenses;
    progress(
        started,
        &format!("seeding {} more licenses", thousands(more as u64)),
    );
    let seeding = Instant::now();
    let seeded = seed::licenses(pool, product_id, customer_id, more, None).await?;
    seed::analyze(pool).await?;
    report.detail(format!(
        "Topped the set up to {} licenses by COPY in {:.1} s.",
        thousands(options.million as u64),
        seeding.elapsed().as_secs_f64()
    ));
    let keys = seeded.keys;
    let proxy = Proxy::start(cp.cluster_addr).await?;
    let million = thousands(options.million as u64);

    struct Sync {
        time: Duration,
        bytes: u64,
        up_bytes: u64,
        resident: u64,
        settled: u64,
        peak: u64,
    }
    let mut syncs = Vec::new();
    let mut dp = None;
    for round in 0..options.rounds {
        let cache = setup.dir.join("dp-million");
        if cache.exists() {
            std::fs::remove_dir_all(&cache)?;
        }
        let revision = setup.cp_revision(cp).await?;
        proxy.reset_counts();
        let mut metered = Vec::new();
        if let Some(pid) = cp.process.pid() {
            metered.push(("control plane", pid, false));
        }
        if let Some(pid) = postmaster {
            metered.push(("PostgreSQL", pid, true));
        }
        let meter = CpuMeter::start(&metered);
        let mut fresh = setup.spawn_data_plane("dp-million", proxy.addr).await?;
        let since = fresh.process.started;
        let recorders = if round == 0 {
            vec![
                record(options, "dp-million-sync", fresh.process.pid()),
                record(options, "cp-million-sync", cp.process.pid()),
            ]
        } else {
            Vec::new()
        };
        let (_, synced) = setup
            .wait_revision(
                &mut fresh,
                revision,
                since,
                Duration::from_millis(10),
                Duration::from_secs(300),
            )
            .await?;
        report.detail(format!(
            "Fresh sync round {}: {}, data plane {:.1} s.",
            round + 1,
            meter.summary(),
            fresh.process.cpu_time().unwrap_or_default().as_secs_f64()
        ));
        for recorder in recorders {
            finish(report, recorder).await;
        }
        let bytes = proxy.down_bytes();
        let up_bytes = proxy.up_bytes();
        let at_sync = fresh.process.memory().unwrap_or_default();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let settled = fresh.process.memory().unwrap_or_default();
        let status = setup.dp_status(&fresh).await.unwrap_or_default();
        ensure!(
            status.licenses as usize >= options.million,
            "the fresh data plane holds {} licenses, not {}",
            status.licenses,
            options.million
        );
        progress(
            started,
            &format!(
                "fresh data plane round {}: synced in {:.2} s, {} from the control plane, resident {}",
                round + 1,
                synced.as_secs_f64(),
                mib(bytes),
                mib(settled.resident)
            ),
        );
        syncs.push(Sync {
            time: synced,
            bytes,
            up_bytes,
            resident: at_sync.resident,
            settled: settled.resident,
            peak: settled.peak,
        });
        if let (Some(sent), Some(received), Some(applied)) = (
            cp.process.last_log_line("snapshot sent"),
            fresh.process.last_log_line("snapshot received"),
            fresh.process.last_log_line("snapshot applied"),
        ) {
            let field = |line: &Value, name: &str| -> String {
                let value = if line[name].is_null() {
                    &line["fields"][name]
                } else {
                    &line[name]
                };
                value.to_string()
            };
            report.detail(format!(
                "Fresh sync round {}: control plane log: {} entities, {} bytes in {} ms \
                 (PostgreSQL {} ms, encoding {} ms, overlapping); data plane log: decoding {} ms, \
                 building the store {} ms (on its own thread).",
                round + 1,
                field(&sent, "entities"),
                field(&sent, "bytes"),
                field(&sent, "elapsed_ms"),
                field(&sent, "database_ms"),
                field(&sent, "encoding_ms"),
                field(&received, "decoding_ms"),
                field(&applied, "building_ms"),
            ));
        }
        if round + 1 < options.rounds {
            fresh.process.stop(Duration::from_secs(15)).await;
        } else {
            dp = Some(fresh);
        }
    }
    let mut dp = dp.context("no data plane left from the sync rounds")?;
    let sync_time = median(
        &syncs
            .iter()
            .map(|s| s.time.as_secs_f64())
            .collect::<Vec<_>>(),
    );
    let snapshot_bytes = median(&syncs.iter().map(|s| s.bytes as f64).collect::<Vec<_>>()) as u64;
    let resident = median(&syncs.iter().map(|s| s.settled as f64).collect::<Vec<_>>()) as u64;
    let peak = median(&syncs.iter().map(|s| s.peak as f64).collect::<Vec<_>>()) as u64;
    report.row(
        format!("a million: fresh data plane, process start → synced ({million} licenses)"),
        format!("{sync_time:.2} s"),
        "≤ 10 s",
        Verdict::from_bool(sync_time <= 10.0),
    );
    report.row(
        "a million: bytes the control plane sent (mTLS on the wire, counted by a proxy)",
        format!(
            "{} ({:.0} bytes per license)",
            mib(snapshot_bytes),
            snapshot_bytes as f64 / options.million as f64
        ),
        "report",
        Verdict::Info,
    );
    report.row(
        "a million: data-plane resident memory (VmRSS 2 s after sync; peak VmHWM)",
        format!("{} (peak {})", mib(resident), mib(peak)),
        "≤ 1 GiB",
        Verdict::from_bool(resident <= 1 << 30),
    );
    report.detail(format!(
        "Fresh syncs: {}; bytes down {}, up {}; resident at the moment of sync {}.",
        join(
            syncs
                .iter()
                .map(|s| format!("{:.2} s", s.time.as_secs_f64()))
        ),
        join(syncs.iter().map(|s| mib(s.bytes))),
        join(syncs.iter().map(|s| thousands(s.up_bytes))),
        join(syncs.iter().map(|s| mib(s.resident))),
    ));

    // One change at a million, end to end.
    let mut delays = Vec::new();
    let log_mark = dp.process.log_text().len();
    let mut metered = Vec::new();
    for (name, pid) in [
        ("control plane", cp.process.pid()),
        ("data plane", dp.process.pid()),
    ] {
        if let Some(pid) = pid {
            metered.push((name, pid, false));
        }
    }
    let meter = CpuMeter::start(&metered);
    for n in 0..100 {
        let key = &keys[n * 997 % keys.len()];
        let value = 500_000 + n as i64;
        setup
            .admin_call(
                cp,
                Method::PUT,
                &format!("/api/licenses/{key}"),
                json!({ "maxActivations": value }),
                200,
            )
            .await?;
        let acknowledged = Instant::now();
        delays.push(
            wait_visible(
                setup.client.clone(),
                dp.public_url.clone(),
                key.clone(),
                value,
                acknowledged,
            )
            .await?,
        );
    }
    let figures = Latencies::of(&delays);
    report.row(
        "a million: one-license change, acknowledged → served by that data plane (100 changes)",
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            figures.p50, figures.p99, figures.max
        ),
        "(end to end; the 1 ms target is the store's, below)",
        Verdict::Info,
    );
    let (count, took) = cache_writes(&dp.process.log_text(), log_mark);
    report.detail(format!(
        "One change at a million, 100 times: {}; the data plane rewrote its disk cache {count} \
         times, taking {:.1} s.",
        meter.summary(),
        took.as_secs_f64()
    ));

    // Resume.
    let plan: Vec<usize> = (0..options.rounds)
        .map(|_| options.changes)
        .chain(std::iter::once((options.changes / 10).max(1)))
        .collect();
    struct Resume {
        changes: usize,
        bytes: u64,
        serving: Duration,
        caught_up: Duration,
        snapshots: bool,
    }
    let mut resumes = Vec::new();
    let mut serial = 0usize;
    for changes in plan {
        dp.process.stop(Duration::from_secs(30)).await;
        for _ in 0..changes {
            let key = &keys[(serial * 7919 + 13) % keys.len()];
            serial += 1;
            setup
                .admin_call(
                    cp,
                    Method::PUT,
                    &format!("/api/licenses/{key}"),
                    json!({ "maxActivations": 600_000 + serial as i64 }),
                    200,
                )
                .await?;
        }
        let revision = setup.cp_revision(cp).await?;
        proxy.reset_counts();
        setup.restart_data_plane(&mut dp)?;
        let since = dp.process.started;
        let (serving, caught_up) = setup
            .wait_revision(
                &mut dp,
                revision,
                since,
                Duration::from_millis(10),
                Duration::from_secs(300),
            )
            .await?;
        let bytes = proxy.down_bytes();
        let snapshots = snapshot_since_restart(&dp);
        progress(
            started,
            &format!(
                "resume after {changes} changes: {} down, serving after {:.2} s, caught up after {:.2} s",
                thousands(bytes),
                serving.as_secs_f64(),
                caught_up.as_secs_f64()
            ),
        );
        resumes.push(Resume {
            changes,
            bytes,
            serving,
            caught_up,
            snapshots,
        });
    }
    let full: Vec<&Resume> = resumes
        .iter()
        .filter(|r| r.changes == options.changes)
        .collect();
    let tenth = resumes.iter().find(|r| r.changes != options.changes);
    let bytes = median(&full.iter().map(|r| r.bytes as f64).collect::<Vec<_>>());
    let catch_up = median(
        &full
            .iter()
            .map(|r| (r.caught_up.saturating_sub(r.serving)).as_secs_f64())
            .collect::<Vec<_>>(),
    );
    let total = median(
        &full
            .iter()
            .map(|r| r.caught_up.as_secs_f64())
            .collect::<Vec<_>>(),
    );
    let per_change = bytes / options.changes as f64;
    let tenth_per_change = tenth.map(|r| r.bytes as f64 / r.changes as f64);
    let share = bytes / snapshot_bytes.max(1) as f64;
    // Bytes = a fixed cost per connection (TLS and websocket handshakes, hello) + a cost per
    // change: the two change counts give both. Proportional: no snapshot, a small share of
    // one, and a fixed cost that is small next to the changes'.
    let marginal = tenth.map(|r| (bytes - r.bytes as f64) / (options.changes - r.changes) as f64);
    let fixed = marginal.map(|m| bytes - m * options.changes as f64);
    let proportional = share < 0.05
        && fixed.is_none_or(|f| f < 0.25 * bytes)
        && !resumes.iter().any(|r| r.snapshots);
    report.row(
        format!(
            "resume: data plane offline during {} changes at {million} licenses, restarted",
            thousands(options.changes as u64)
        ),
        format!(
            "{} bytes = {:.2}% of a snapshot ({per_change:.0} B/change{}); caught up {:.2} s after serving its cache ({:.2} s after process start)",
            thousands(bytes as u64),
            share * 100.0,
            match (tenth, tenth_per_change, marginal, fixed) {
                (Some(r), Some(t), Some(m), Some(f)) => format!(
                    "; {} changes: {} bytes, {t:.0} B/change; fit: {f:.0} B per connection + {m:.0} B per change",
                    r.changes,
                    thousands(r.bytes)
                ),
                _ => String::new(),
            },
            catch_up,
            total
        ),
        "proportional to the changes, not the set",
        Verdict::from_bool(proportional),
    );
    report.detail(format!(
        "Resume rounds: {}.",
        join(resumes.iter().map(|r| format!(
            "{} changes → {} bytes, serving {:.2} s, caught up {:.2} s{}",
            r.changes,
            thousands(r.bytes),
            r.serving.as_secs_f64(),
            r.caught_up.as_secs_f64(),
            if r.snapshots { " (got a SNAPSHOT)" } else { "" }
        )))
    ));
    dp.process.stop(Duration::from_secs(30)).await;
    Ok(())
}

/// Whether the data plane's log since its last start shows a snapshot being received.
fn snapshot_since_restart(dp: &DataPlane) -> bool {
    let log = dp.process.log_text();
    let since_start = log
        .rfind("data plane listening")
        .map_or(log.as_str(), |at| &log[at..]);
    since_start.contains("receiving a snapshot")
}

/// The data plane's own store with `--million` licenses, in this process: one-license deltas
/// (an existing license's new version) timed one by one.
async fn store_apply(report: &mut Report, options: &Options) -> anyhow::Result<()> {
    let count = options.million;
    let rounds = options.rounds;
    let per_round = 1_000;
    let measured = tokio::task::spawn_blocking(move || {
        let building = Instant::now();
        let (store, sample) = synthetic::store(count, rounds * per_round);
        let built = building.elapsed();
        let mut revision = store.revision();
        let mut results = Vec::new();
        for round in 0..rounds {
            let mut times = Vec::with_capacity(per_round);
            for license in sample.iter().skip(round * per_round).take(per_round) {
                revision += 1;
                let mut changed = license.clone();
                changed.max_activations = Some(6 + round as i32);
                changed.revision = revision;
                let change = license_shared::protocol::Change::License(changed);
                let started = Instant::now();
                store.apply_deltas(revision, vec![change]);
                times.push(started.elapsed());
            }
            results.push(Latencies::of(&times));
        }
        (built, results)
    })
    .await?;
    let (built, rounds_figures) = measured;
    let figures = Latencies::median_of(&rounds_figures);
    report.row(
        format!(
            "a million: applying a one-license change in the data plane's store (in process, {} × {} rounds)",
            per_round, rounds
        ),
        format!(
            "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            figures.p50, figures.p99, figures.max
        ),
        "≤ 1 ms",
        Verdict::from_bool(figures.p99 <= 1.0),
    );
    report.detail(format!(
        "In-process store of {} synthetic licenses built in {:.2} s; apply p99 per round: {}.",
        thousands(count as u64),
        built.as_secs_f64(),
        join(rounds_figures.iter().map(|l| format!("{:.3} ms", l.p99)))
    ));
    Ok(())
}

/// The statements PostgreSQL logged as slow (`duration: … ms  statement|execute …: SQL`),
/// grouped by their first words: `count × SQL… (max N ms)`, most frequent first.
fn slow_statements(log: &str) -> String {
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
fn cache_writes(log: &str, from: usize) -> (usize, Duration) {
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
fn cache_write_windows(
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
