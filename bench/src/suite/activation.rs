//! Phase 6, activation: new-device `validate` calls through data plane 1, one after the other
//! (data plane → control plane → PostgreSQL → data plane).

use std::time::{Duration, Instant};

use anyhow::ensure;
use serde_json::json;

use crate::cluster::{DataPlane, Setup};
use crate::report::Verdict;
use crate::stats::Latencies;

use super::{Run, progress};

/// Measures and reports new-device activations through the first of `dps`.
pub(super) async fn measure(
    run: &mut Run<'_>,
    dps: &[DataPlane],
    keys: &[String],
) -> anyhow::Result<()> {
    let (options, setup, started) = (run.options, run.setup, run.started);
    let report = &mut *run.report;
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
    Ok(())
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
