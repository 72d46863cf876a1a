//! Phases 2 to 6: three data planes holding the seeded set, the baseline server answering the
//! bytes of a data-plane verify answer, then throughput, latency, check_license, propagation
//! and activation on them; the data planes and the baseline are stopped at the end.

use std::path::Path;
use std::time::Duration;

use anyhow::ensure;

use crate::cluster::ControlPlane;
use crate::wrk::{Load, Mode};
use test_support::pg::PgServer;

use super::{
    LicenseSet, Options, Run, activation, check_license, latency, progress, propagation, throughput,
};

/// The figures of three data planes holding `set`.
pub(super) async fn measure(
    run: &mut Run<'_>,
    cp: &mut ControlPlane,
    pg: &PgServer,
    set: &LicenseSet,
) -> anyhow::Result<()> {
    let (setup, started) = (run.setup, run.started);
    let keys = &set.keys;
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
    run.report.detail(format!(
        "A verify answer is {} bytes; the baseline answers those bytes.",
        answer.len()
    ));

    let peak = throughput::measure(run, cp, &dps, &baseline, set).await?;
    latency::measure(run, &dps, &baseline, set, peak).await?;
    progress(started, "check_license");
    check_license::measure(run, &dps[0], set).await?;
    propagation::measure(run, cp, pg, &dps, keys).await?;
    activation::measure(run, &dps, keys).await?;

    for dp in &mut dps {
        dp.process.stop(Duration::from_secs(15)).await;
    }
    let mut baseline = baseline;
    baseline.process.stop(Duration::from_secs(5)).await;
    Ok(())
}

/// A verify load of `url` with random keys of `keys_file` over `duration`.
pub(super) fn verify_load(
    options: &Options,
    keys_file: &Path,
    url: &str,
    duration: Duration,
) -> Load {
    Load {
        url: url.to_owned(),
        mode: Mode::Verify,
        keys: keys_file.to_path_buf(),
        threads: options.threads,
        connections: options.connections,
        duration,
        delay_ms: 0,
    }
}
