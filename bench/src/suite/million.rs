//! Phase 7, a million licenses: the data planes are stopped, the set is topped up to
//! `--million` by SQL, and a fresh data plane syncs through a byte-counting proxy, `--rounds`
//! times: time from process start to its `/status` revision equal to the control plane's, bytes
//! the control plane sent, resident memory. Then one-license changes acknowledged → served on
//! it, and the [`resume`](super::resume) rounds on the same data plane.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use test_support::process::CpuMeter;
use test_support::proxy::Proxy;

use crate::cluster::ControlPlane;
use crate::report::{Verdict, mib, thousands};
use crate::seed;
use crate::stats::{Latencies, median};

use super::logs::cache_writes;
use super::propagation::wait_visible;
use super::{LicenseSet, Run, finish, join, progress, record, resume};

/// The million-license part: seed, fresh syncs, one change, then [`resume`].
pub(super) async fn measure(
    run: &mut Run<'_>,
    cp: &mut ControlPlane,
    pool: &sqlx::PgPool,
    set: &LicenseSet,
    postmaster: Option<u32>,
) -> anyhow::Result<()> {
    let (options, setup, started) = (run.options, run.setup, run.started);
    let report = &mut *run.report;
    let (product_id, customer_id) = (set.product_id, set.customer_id);
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
    resume::measure(run, cp, &mut dp, &proxy, &keys, snapshot_bytes).await
}
