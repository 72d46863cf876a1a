//! The scale figures of one control plane holding many data-plane sessions (issue 13,
//! `scripts/bench --only-sessions`): `--sessions` (1,000) real mTLS websocket sessions speaking
//! the real protocol ([`client`]), all in one tokio runtime of the runner, against one release
//! control plane on a throwaway PostgreSQL. Measured:
//!
//! - **propagation**: `--session-changes` (100) admin writes one after the other, each timed
//!   from its acknowledgement until every session has received the delta carrying it;
//! - **memory**: the control plane's resident memory (`VmRSS`) with every session synced and
//!   settled, minus its resident memory with none, divided by the sessions;
//! - **CPU**: the control plane's CPU time (utime + stime, `/proc`) over the writes, per change
//!   and per delivery (change × session); PostgreSQL's likewise, and both while idle.
//!
//! The open-file limit is raised first (the control plane inherits it): each session is one
//! socket on either side.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::Method;
use serde_json::json;
use test_support::limits::raise_open_files;
use test_support::pg::{PgOptions, PgServer};
use test_support::process::tree_cpu_time;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::cluster::{ControlPlane, Setup, release_bin_dir};
use crate::report::{Report, Verdict, mib, thousands};
use crate::stats::{Latencies, ms};

mod client;

use client::{Event, SessionConfig};

/// What to run.
#[derive(Debug, Clone)]
pub struct SessionsOptions {
    /// Sessions held by the one control plane.
    pub count: usize,
    /// Admin writes fanned out to all of them.
    pub changes: usize,
    /// The runner's directory; the sessions run in `<work_dir>/sessions` (wiped first).
    pub work_dir: PathBuf,
}

/// Sessions opening at once (connected but not synced yet): the control plane's database pool
/// (20 connections) serves every session's registration and snapshot.
const OPENING_AT_ONCE: usize = 32;
/// How long all sessions may take to receive one change.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before each memory reading, for the allocator to settle.
const SETTLE: Duration = Duration::from_secs(3);
/// Length of the idle window whose CPU use is reported beside the writes'.
const IDLE_WINDOW: Duration = Duration::from_secs(5);

/// Runs the sessions figures and adds them to `report`.
pub async fn run(options: &SessionsOptions, report: &mut Report) -> anyhow::Result<()> {
    let started = Instant::now();
    let files = raise_open_files(options.count as u64 * 2 + 1_024)?;
    let dir = options.work_dir.join("sessions");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the last run's {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    progress(
        started,
        "sessions: starting PostgreSQL and the control plane",
    );
    let mut pg = PgServer::start(PgOptions::for_benchmarks(&dir.join("pg"))).await?;
    let database_url = pg.create_database("licenses").await?;
    let setup = Setup::new(release_bin_dir()?, dir.clone(), database_url)?;
    let mut cp = setup.start_control_plane().await?;
    let postmaster = pg.postmaster_pid().context("no postmaster pid")?;
    let measured = measure(options, &setup, &cp, postmaster, started).await;
    cp.process.stop(Duration::from_secs(15)).await;
    pg.stop().await;
    let figures = measured?;
    figures.report(options, files, report);
    progress(started, "sessions: done");
    Ok(())
}

/// What [`measure`] found.
#[derive(Debug)]
struct Figures {
    opened_in: Duration,
    resident_before: u64,
    resident_after: u64,
    /// Acknowledged → delivered to every session, per change.
    propagation: Vec<Duration>,
    /// Request sent → delivered to every session, per change.
    from_request: Vec<Duration>,
    /// Acknowledged → delivered to the first session, per change.
    first_delivery: Vec<Duration>,
    writes_wall: Duration,
    cp_cpu: Duration,
    pg_cpu: Duration,
    /// This runner's, the sessions' side.
    runner_cpu: Duration,
    idle_cp_cpu: Duration,
    idle_pg_cpu: Duration,
}

async fn measure(
    options: &SessionsOptions,
    setup: &Setup,
    cp: &ControlPlane,
    postmaster: u32,
    started: Instant,
) -> anyhow::Result<Figures> {
    let key = one_license(setup, cp).await?;
    tokio::time::sleep(SETTLE).await;
    let resident_before = cp
        .process
        .memory()
        .context("the control plane's memory")?
        .resident;

    let tls = license_shared::tls::client_config_from_files(
        &setup.cluster.certs.join("cluster-dp.crt"),
        &setup.cluster.certs.join("cluster-dp.key"),
        &setup.cluster.certs.join("cluster-ca.crt"),
    )?;
    let config = SessionConfig {
        cluster_addr: cp.cluster_addr,
        tls: Arc::new(tls),
    };
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut sessions = JoinSet::new();
    progress(
        started,
        &format!("sessions: opening {}", thousands(options.count as u64)),
    );
    let opening = Instant::now();
    // The revision each session has: from its snapshot, then from the deltas it receives.
    let mut received = vec![0i64; options.count];
    let mut synced = 0;
    for session in 0..options.count {
        while session - synced >= OPENING_AT_ONCE {
            synced += count_synced(&mut events, &mut sessions, &mut received).await?;
        }
        sessions.spawn(client::run(session, config.clone(), events_tx.clone()));
    }
    while synced < options.count {
        synced += count_synced(&mut events, &mut sessions, &mut received).await?;
    }
    let opened_in = opening.elapsed();
    progress(
        started,
        &format!(
            "sessions: {} synced in {:.1} s",
            thousands(synced as u64),
            opened_in.as_secs_f64()
        ),
    );
    tokio::time::sleep(SETTLE).await;
    let resident_after = cp
        .process
        .memory()
        .context("the control plane's memory")?
        .resident;

    let cp_pid = cp.process.pid().context("the control plane runs")?;
    let (cp_idle_start, pg_idle_start) = (cpu(cp_pid), tree_cpu_time(postmaster));
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_cp_cpu = cpu(cp_pid).saturating_sub(cp_idle_start);
    let idle_pg_cpu = tree_cpu_time(postmaster).saturating_sub(pg_idle_start);
    drain_idle(&mut events, &mut sessions)?;

    progress(
        started,
        &format!("sessions: {} changes fanned out", options.changes),
    );
    let mut figures = Figures {
        opened_in,
        resident_before,
        resident_after,
        propagation: Vec::new(),
        from_request: Vec::new(),
        first_delivery: Vec::new(),
        writes_wall: Duration::ZERO,
        cp_cpu: Duration::ZERO,
        pg_cpu: Duration::ZERO,
        runner_cpu: Duration::ZERO,
        idle_cp_cpu,
        idle_pg_cpu,
    };
    let runner = std::process::id();
    let (cp_start, pg_start, runner_start, writes_start) = (
        cpu(cp_pid),
        tree_cpu_time(postmaster),
        cpu(runner),
        Instant::now(),
    );
    for change in 0..options.changes {
        let sent = Instant::now();
        let answer = setup
            .admin_call(
                cp,
                Method::PUT,
                &format!("/api/licenses/{key}"),
                json!({ "maxActivations": 1_000 + change }),
                200,
            )
            .await?;
        let acknowledged = Instant::now();
        let revision = answer["revision"]
            .as_i64()
            .with_context(|| format!("no revision in the write's answer {answer}"))?;
        let (first, last) =
            wait_delivered(&mut events, &mut received, revision, acknowledged).await?;
        figures
            .propagation
            .push(last.saturating_duration_since(acknowledged));
        figures
            .from_request
            .push(last.saturating_duration_since(sent));
        figures
            .first_delivery
            .push(first.saturating_duration_since(acknowledged));
    }
    figures.writes_wall = writes_start.elapsed();
    figures.cp_cpu = cpu(cp_pid).saturating_sub(cp_start);
    figures.pg_cpu = tree_cpu_time(postmaster).saturating_sub(pg_start);
    figures.runner_cpu = cpu(runner).saturating_sub(runner_start);
    drop(events);
    sessions.abort_all();
    Ok(figures)
}

/// Creates the product, customer and license whose changes are fanned out; returns its key.
async fn one_license(setup: &Setup, cp: &ControlPlane) -> anyhow::Result<String> {
    let created = |path: &'static str, body| setup.admin_call(cp, Method::POST, path, body, 201);
    let product = created(
        "/api/products",
        json!({ "code": "sessions", "name": "Sessions" }),
    )
    .await?;
    let customer = created("/api/customers", json!({ "email": "sessions@example.com" })).await?;
    let license = created(
        "/api/licenses",
        json!({ "productId": product["id"], "customerId": customer["id"] }),
    )
    .await?;
    Ok(license["licenseKey"]
        .as_str()
        .context("no licenseKey in the answer")?
        .to_owned())
}

/// The CPU time of `pid` so far.
fn cpu(pid: u32) -> Duration {
    test_support::process::cpu_time(pid).unwrap_or_default()
}

/// Waits for the next event and notes the revision it brings; returns how many sessions it
/// says have synced (0 or 1). A session that ended is an error, with its reason.
async fn count_synced(
    events: &mut mpsc::UnboundedReceiver<Event>,
    sessions: &mut JoinSet<anyhow::Result<()>>,
    received: &mut [i64],
) -> anyhow::Result<usize> {
    match events.recv().await.context("every session ended")? {
        Event::Synced { session, revision } => {
            received[session] = received[session].max(revision);
            Ok(1)
        }
        Event::Delta {
            session, revision, ..
        } => {
            received[session] = received[session].max(revision);
            Ok(0)
        }
        Event::Ended { session } => Err(ended(session, sessions).await),
    }
}

/// Why session `session` ended, as an error.
async fn ended(session: usize, sessions: &mut JoinSet<anyhow::Result<()>>) -> anyhow::Error {
    let reason = match sessions.join_next().await {
        Some(Ok(Err(error))) => format!("{error:#}"),
        Some(Ok(Ok(()))) => "the control plane closed it".to_owned(),
        Some(Err(error)) => error.to_string(),
        None => "unknown".to_owned(),
    };
    anyhow::anyhow!("session {session} ended: {reason}")
}

/// Takes what arrived while idle (nothing but pings is expected); fails if a session ended.
fn drain_idle(
    events: &mut mpsc::UnboundedReceiver<Event>,
    sessions: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    while let Ok(event) = events.try_recv() {
        if let Event::Ended { session } = event {
            let finished = sessions.try_join_next();
            bail!("session {session} ended while idle: {finished:?}");
        }
    }
    Ok(())
}

/// Receives deliveries until every session has revision `revision`; returns when the first
/// and the last session got it.
async fn wait_delivered(
    events: &mut mpsc::UnboundedReceiver<Event>,
    received: &mut [i64],
    revision: i64,
    acknowledged: Instant,
) -> anyhow::Result<(Instant, Instant)> {
    let mut missing = received.iter().filter(|&&got| got < revision).count();
    let (mut first, mut last) = (None, acknowledged);
    while missing > 0 {
        let left = CHANGE_TIMEOUT.saturating_sub(acknowledged.elapsed());
        let event = tokio::time::timeout(left, events.recv())
            .await
            .with_context(|| {
                format!(
                    "{missing} sessions did not receive revision {revision} in {CHANGE_TIMEOUT:?}"
                )
            })?
            .context("every session ended")?;
        match event {
            Event::Delta {
                session,
                revision: delivered,
                at,
            } => {
                let before = received[session];
                received[session] = before.max(delivered);
                if before < revision && delivered >= revision {
                    missing -= 1;
                    first.get_or_insert(at);
                    last = last.max(at);
                }
            }
            Event::Synced { session, revision } => {
                received[session] = received[session].max(revision);
            }
            Event::Ended { session } => bail!("session {session} ended during the writes"),
        }
    }
    ensure!(first.is_some() || received.is_empty(), "no delivery seen");
    Ok((first.unwrap_or(last), last))
}

impl Figures {
    fn report(&self, options: &SessionsOptions, open_files: u64, report: &mut Report) {
        let sessions = thousands(options.count as u64);
        let propagation = Latencies::of(&self.propagation);
        report.row(
            format!(
                "sessions: admin write acknowledged → delta received by all of {sessions} sessions on one control plane ({} changes)",
                options.changes
            ),
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                propagation.p50, propagation.p99, propagation.max
            ),
            "p99 ≤ 100 ms",
            Verdict::from_bool(propagation.p99 <= 100.0),
        );
        let per_session = self.resident_after.saturating_sub(self.resident_before) as f64
            / options.count.max(1) as f64;
        report.row(
            format!("sessions: control-plane resident memory per session ({sessions} sessions)"),
            format!(
                "{:.1} KiB ({} with no session, {} with {sessions})",
                per_session / 1024.0,
                mib(self.resident_before),
                mib(self.resident_after)
            ),
            "report",
            Verdict::Info,
        );
        let changes = options.changes.max(1) as f64;
        let deliveries = changes * options.count.max(1) as f64;
        report.row(
            format!("sessions: control-plane CPU per change fanned out to {sessions} sessions"),
            format!(
                "{:.1} ms per change = {:.1} µs per delivery (PostgreSQL: {:.1} ms per change)",
                ms(self.cp_cpu) / changes,
                self.cp_cpu.as_secs_f64() * 1e6 / deliveries,
                ms(self.pg_cpu) / changes
            ),
            "report",
            Verdict::Info,
        );
        report.detail(format!(
            "Reproduce: `scripts/bench --only-sessions` (release build; `--sessions {}`, \
             `--session-changes {}` are the defaults); the runner is `bench/src/sessions/`.",
            options.count, options.changes
        ));
        let from_request = Latencies::of(&self.from_request);
        let first = Latencies::of(&self.first_delivery);
        report.detail(format!(
            "Sessions: {sessions} opened and synced (snapshot applied, `Applied` sent) in {:.1} s, \
             {OPENING_AT_ONCE} opening at a time, all in the runner's one tokio runtime; open-file \
             limit {open_files}. Propagation measured from the request instead of the \
             acknowledgement: p50 {:.2} ms, p99 {:.2} ms; to the first session: p50 {:.2} ms, \
             p99 {:.2} ms.",
            self.opened_in.as_secs_f64(),
            from_request.p50,
            from_request.p99,
            first.p50,
            first.p99,
        ));
        report.detail(format!(
            "Sessions CPU: over the {} writes ({:.1} s of wall time) the control plane used \
             {:.2} s, PostgreSQL {:.2} s (its backends, all together) and this runner, the \
             sessions' side, {:.2} s, on 2 shared cores; idle with {sessions} sessions (pings, \
             last-seen updates) the control plane used {:.2} s and PostgreSQL {:.2} s per {:.0} s.",
            options.changes,
            self.writes_wall.as_secs_f64(),
            self.cp_cpu.as_secs_f64(),
            self.pg_cpu.as_secs_f64(),
            self.runner_cpu.as_secs_f64(),
            self.idle_cp_cpu.as_secs_f64(),
            self.idle_pg_cpu.as_secs_f64(),
            IDLE_WINDOW.as_secs_f64(),
        ));
    }
}

/// Prints a progress line on stderr.
fn progress(started: Instant, text: &str) {
    eprintln!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
}
