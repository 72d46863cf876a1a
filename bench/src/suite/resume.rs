//! Phase 8, resume: the million-license data plane is stopped (SIGTERM, cache flushed),
//! `--changes` writes happen, it restarts: bytes and catch-up time, `--rounds` times, plus once
//! with a tenth of the changes to show the cost is proportional to the changes.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use test_support::proxy::Proxy;

use crate::cluster::{ControlPlane, DataPlane};
use crate::report::{Verdict, thousands};
use crate::stats::median;

use super::{Run, join, progress};

/// Measures and reports the resumes of `dp` (reached through `proxy`), changing licenses among
/// `keys`; `snapshot_bytes` is what a full sync cost, for the share.
pub(super) async fn measure(
    run: &mut Run<'_>,
    cp: &mut ControlPlane,
    dp: &mut DataPlane,
    proxy: &Proxy,
    keys: &[String],
    snapshot_bytes: u64,
) -> anyhow::Result<()> {
    let (options, setup, started) = (run.options, run.setup, run.started);
    let report = &mut *run.report;
    let million = thousands(options.million as u64);
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
        setup.restart_data_plane(dp)?;
        let since = dp.process.started;
        let (serving, caught_up) = setup
            .wait_revision(
                dp,
                revision,
                since,
                Duration::from_millis(10),
                Duration::from_secs(300),
            )
            .await?;
        let bytes = proxy.down_bytes();
        let snapshots = snapshot_since_restart(dp);
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
