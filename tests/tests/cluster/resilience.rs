//! Data planes keep answering while the control plane is gone, restart from their disk cache,
//! and catch up through deltas, not snapshots, when it is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use integration_tests::cluster::TestCluster;
use integration_tests::process::wait_for;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn data_planes_ride_out_the_control_plane() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let mut cp = cluster.start_control_plane().await.expect("control plane");
    let mut dp = cluster.start_data_plane(&cp).await.expect("dp");
    let license = cluster
        .create_license(&cp, json!({}))
        .await
        .expect("license");
    let key = license["licenseKey"].as_str().expect("key").to_owned();
    wait_for("the license", Duration::from_secs(5), || async {
        cluster.verify(&dp, &key).await.expect("verified").0 == 200
    })
    .await
    .expect("synced");

    // Verify load from 4 clients while the control plane is SIGKILLed.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let url = format!("{}/api/licenses/verify", dp.public_url);
            let (client, key) = (cluster.client.clone(), key.clone());
            let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = match client
                        .post(&url)
                        .json(&json!({ "licenseKey": key }))
                        .send()
                        .await
                    {
                        Ok(response) => response.status() == 200,
                        Err(_) => false,
                    };
                    let counter = if ok { &served } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    cp.process.kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    let (served, failed) = (
        served.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    println!(
        "verify under load while the control plane was killed: {served} served, {failed} failed"
    );
    assert!(served > 100, "the load ran: {served}");
    assert_eq!(failed, 0);

    // A restart with the control plane still down serves from the disk cache.
    dp.process.kill();
    cluster
        .restart_data_plane(&mut dp)
        .await
        .expect("restarted from cache");
    assert_eq!(cluster.verify(&dp, &key).await.expect("verified").0, 200);
    let status = cluster.status(&dp).await.expect("status");
    assert_eq!(status["controlPlane"]["connected"], false, "{status}");
    // A new device cannot be activated without the control plane: a clear 503.
    let response = cluster
        .client
        .post(format!("{}/api/licenses/validate", dp.public_url))
        .json(&json!({ "licenseKey": key, "deviceId": "new-device" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["code"], "control_plane_unavailable");

    // The control plane comes back: the data plane resumes with deltas only.
    cluster
        .restart_control_plane(&mut cp)
        .await
        .expect("cp back");
    wait_for("the reconnection", Duration::from_secs(20), || async {
        cluster.status(&dp).await.expect("status")["controlPlane"]["connected"] == true
    })
    .await
    .expect("reconnected");
    let response = cluster
        .admin(&cp, Method::PUT, &format!("/api/licenses/{key}"))
        .json(&json!({ "status": "revoked" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    wait_for("the revocation", Duration::from_secs(5), || async {
        cluster.verify(&dp, &key).await.expect("verified").1["status"] == "revoked"
    })
    .await
    .expect("caught up");
    let status = cluster.status(&dp).await.expect("status");
    assert_eq!(status["controlPlane"]["snapshotsReceived"], 0, "{status}");
    assert!(
        status["controlPlane"]["deltasReceived"].as_u64() >= Some(1),
        "{status}"
    );
}

#[tokio::test]
async fn a_data_plane_that_was_away_resumes_with_deltas() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let mut dp = cluster.start_data_plane(&cp).await.expect("dp");
    let first = cluster
        .create_license(&cp, json!({}))
        .await
        .expect("license");
    let first_key = first["licenseKey"].as_str().expect("key").to_owned();
    wait_for("the license", Duration::from_secs(5), || async {
        cluster.verify(&dp, &first_key).await.expect("verified").0 == 200
    })
    .await
    .expect("synced");

    dp.process.terminate();
    let mut keys = Vec::new();
    for _ in 0..20 {
        let license = cluster
            .create_license(&cp, json!({}))
            .await
            .expect("license");
        keys.push(license["licenseKey"].as_str().expect("key").to_owned());
    }
    cluster
        .restart_data_plane(&mut dp)
        .await
        .expect("restarted");
    for key in &keys {
        wait_for("a missed license", Duration::from_secs(10), || async {
            cluster.verify(&dp, key).await.expect("verified").0 == 200
        })
        .await
        .expect("caught up");
    }
    let status = cluster.status(&dp).await.expect("status");
    assert_eq!(status["controlPlane"]["snapshotsReceived"], 0, "{status}");
    assert_eq!(status["licenses"], 21, "{status}");
}

#[tokio::test]
async fn a_data_plane_moved_to_another_database_gets_a_snapshot() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let mut dp = cluster.start_data_plane(&cp).await.expect("dp");
    let old = cluster
        .create_license(&cp, json!({}))
        .await
        .expect("license");
    let old_key = old["licenseKey"].as_str().expect("key").to_owned();
    wait_for("the license", Duration::from_secs(5), || async {
        cluster.verify(&dp, &old_key).await.expect("verified").0 == 200
    })
    .await
    .expect("synced");
    dp.process.terminate();

    // Another license set, whose revisions happen to be higher than the data plane's.
    cluster.database_url = integration_tests::pg::fresh_database().await.expect("db");
    let other = cluster
        .start_control_plane()
        .await
        .expect("other control plane");
    for _ in 0..3 {
        cluster
            .create_license(&other, json!({}))
            .await
            .expect("license");
    }
    dp.point_to(&other);
    cluster
        .restart_data_plane(&mut dp)
        .await
        .expect("restarted");
    wait_for("the snapshot", Duration::from_secs(10), || async {
        cluster.status(&dp).await.expect("status")["controlPlane"]["snapshotsReceived"] == 1
    })
    .await
    .expect("a snapshot replaced the stale state");
    assert_eq!(
        cluster.verify(&dp, &old_key).await.expect("verified").0,
        404
    );
    assert_eq!(cluster.status(&dp).await.expect("status")["licenses"], 3);
}
