//! Phase 9, applying one change at a million, in process: the data plane's own `Store` with
//! `--million` synthetic licenses, one-license deltas timed one by one.

use std::time::Instant;

use crate::report::{Report, Verdict, thousands};
use crate::stats::Latencies;
use crate::synthetic;

use super::{Options, join};

/// The data plane's own store with `--million` licenses, in this process: one-license deltas
/// (an existing license's new version) timed one by one.
pub(super) async fn measure(report: &mut Report, options: &Options) -> anyhow::Result<()> {
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
