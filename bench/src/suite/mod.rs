//! The benchmark suite, in the order it runs (DESIGN §9, issue 6), one file per phase, each
//! phase a function of the run's context ([`Run`]) and what the phases before it made:
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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use test_support::pg::{PgOptions, PgServer};

use crate::cluster::{Setup, release_bin_dir};
use crate::profile::Recorder;
use crate::report::{Report, Verdict, thousands};
use crate::seed;
use crate::synthetic::DEVICE;
use crate::wrk::{self, Outcome};

mod activation;
mod check_license;
mod latency;
mod logs;
mod million;
mod propagation;
mod resume;
mod serving;
mod store_apply;
mod throughput;

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

/// What every phase works with: the options, the report it adds to, the processes' setup,
/// when the run started (for progress lines) and wrk's script.
#[derive(Debug)]
pub(super) struct Run<'a> {
    pub(super) options: &'a Options,
    pub(super) report: &'a mut Report,
    pub(super) setup: &'a Setup,
    pub(super) started: Instant,
    pub(super) script: &'a Path,
}

/// The seeded license set the serving phases draw keys from.
#[derive(Debug)]
pub(super) struct LicenseSet {
    pub(super) keys: Arc<Vec<String>>,
    /// The keys, one a line, for wrk.
    pub(super) keys_file: PathBuf,
    pub(super) product_id: uuid::Uuid,
    pub(super) customer_id: uuid::Uuid,
    /// A LicenseSpring credential for the product, when the control plane makes them.
    pub(super) credential: Option<Value>,
}

/// Starts a profile of `pid` when profiling is on.
pub(super) fn record(options: &Options, name: &str, pid: Option<u32>) -> Option<Recorder> {
    if !options.profile {
        return None;
    }
    // Call chains where the question is which of our functions the time is under.
    let call_graph = !name.starts_with("cp-verify") && !name.starts_with("cp-propagation");
    Recorder::start(name, pid?, &options.work_dir, call_graph)
}

/// Stops a profile and adds its summary to the details.
pub(super) async fn finish(report: &mut Report, recorder: Option<Recorder>) {
    if let Some(recorder) = recorder {
        if let Some(summary) = recorder.finish(12).await {
            report.detail(summary);
        }
    }
}

/// Prints a progress line on stderr.
pub(super) fn progress(started: Instant, text: &str) {
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
    let keys_file = dir.join("keys.txt");
    std::fs::write(&keys_file, seeded.keys.join("\n") + "\n")?;
    let set = LicenseSet {
        keys: Arc::new(seeded.keys),
        keys_file,
        product_id,
        customer_id,
        credential,
    };

    let mut run = Run {
        options,
        report,
        setup: &setup,
        started,
        script: &script,
    };
    if options.only_million {
        run.report
            .detail("Serving figures not measured (--only-million).".to_owned());
    } else {
        serving::measure(&mut run, &mut cp, &pg, &set).await?;
    }

    // A million.
    if options.million > options.licenses {
        million::measure(&mut run, &mut cp, &pool, &set, pg.postmaster_pid()).await?;
    } else {
        let report = &mut *run.report;
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
        store_apply::measure(run.report, options).await?;
    }
    progress(started, "done");
    run.report.fact(
        "suite run time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    Ok(())
}

pub(super) fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

pub(super) fn rates(rounds: &[Outcome]) -> Vec<f64> {
    rounds.iter().map(Outcome::rate).collect()
}
