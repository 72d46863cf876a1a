//! Changes reach every data plane quickly; activations are decided once for the whole cluster.

use std::time::{Duration, Instant};

use integration_tests::cluster::TestCluster;
use integration_tests::process::wait_for;
use reqwest::Method;
use serde_json::{Value, json};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test]
async fn admin_changes_reach_every_data_plane() {
    const CHANGES: usize = 100;
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let dps = vec![
        cluster.start_data_plane(&cp).await.expect("dp"),
        cluster.start_data_plane(&cp).await.expect("dp"),
    ];
    let license = cluster
        .create_license(&cp, json!({}))
        .await
        .expect("license");
    let key = license["licenseKey"].as_str().expect("key").to_owned();

    let mut delays = Vec::with_capacity(CHANGES);
    for change in 0..CHANGES {
        let status = if change % 2 == 0 {
            "suspended"
        } else {
            "active"
        };
        let response = cluster
            .admin(&cp, Method::PUT, &format!("/api/licenses/{key}"))
            .json(&json!({ "status": status }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        let acknowledged = Instant::now();
        // Poll the data planes back to back (no sleep) so the figure is the delay itself.
        for dp in &dps {
            loop {
                let (_, body) = cluster.verify(dp, &key).await.expect("verified");
                if body["status"] == status {
                    break;
                }
                assert!(
                    acknowledged.elapsed() < Duration::from_secs(5),
                    "not propagated"
                );
            }
        }
        delays.push(acknowledged.elapsed());
    }
    delays.sort();
    println!(
        "propagation to 2 data planes over {CHANGES} changes: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays[delays.len() - 1]
    );

    // Creation and deletion propagate too.
    let second = cluster
        .create_license(&cp, json!({}))
        .await
        .expect("license");
    let second_key = second["licenseKey"].as_str().expect("key").to_owned();
    for dp in &dps {
        wait_for("the new license", Duration::from_secs(5), || async {
            cluster.verify(dp, &second_key).await.expect("verified").0 == 200
        })
        .await
        .expect("created everywhere");
    }
    let response = cluster
        .admin(&cp, Method::DELETE, &format!("/api/licenses/{second_key}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);
    for dp in &dps {
        wait_for("the deletion", Duration::from_secs(5), || async {
            cluster.verify(dp, &second_key).await.expect("verified").0 == 404
        })
        .await
        .expect("deleted everywhere");
    }

    let planes: Value = cluster
        .admin(&cp, Method::GET, "/clustering/data-planes")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let listed = planes["data"].as_array().expect("a list");
    assert_eq!(listed.len(), 2, "{planes}");
    for dp in listed {
        assert!(
            dp["hostname"].is_string() && dp["ip"] == "127.0.0.1",
            "{dp}"
        );
        assert_eq!(dp["version"], env!("CARGO_PKG_VERSION"));
    }
}

#[tokio::test]
async fn the_activation_limit_holds_across_data_planes() {
    const DEVICES: usize = 60;
    const LIMIT: usize = 4;
    let mut cluster = TestCluster::new().await.expect("cluster");
    let mut cp = cluster.start_control_plane().await.expect("control plane");
    let mut dps = Vec::new();
    for _ in 0..3 {
        dps.push(cluster.start_data_plane(&cp).await.expect("dp"));
    }
    let license = cluster
        .create_license(&cp, json!({ "maxActivations": LIMIT }))
        .await
        .expect("license");
    let key = license["licenseKey"].as_str().expect("key").to_owned();
    for dp in &dps {
        wait_for("the license", Duration::from_secs(5), || async {
            cluster.verify(dp, &key).await.expect("verified").0 == 200
        })
        .await
        .expect("synced");
    }

    let calls: Vec<_> = (0..DEVICES)
        .map(|device| {
            let url = format!(
                "{}/api/licenses/validate",
                dps[device % dps.len()].public_url
            );
            let (client, key) = (cluster.client.clone(), key.clone());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .json(&json!({ "licenseKey": key, "deviceId": format!("device-{device}") }))
                    .send()
                    .await
                    .expect("sent");
                let status = response.status().as_u16();
                let body: Value = response.json().await.expect("json");
                (status, body["code"].as_str().map(str::to_owned))
            })
        })
        .collect();
    let mut accepted = 0;
    for call in calls {
        match call.await.expect("joined") {
            (200, _) => accepted += 1,
            (403, Some(code)) if code == "activation_limit_reached" => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(accepted, LIMIT);

    // An active device is answered by any data plane from memory: once every data plane has
    // applied the activations, the control plane is killed, so no answer can come from it.
    let activations: Vec<Value> = cluster
        .admin(
            &cp,
            Method::GET,
            &format!("/api/licenses/{key}/activations"),
        )
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(activations.len(), LIMIT);
    let device = activations[0]["deviceId"]
        .as_str()
        .expect("device")
        .to_owned();
    let revision = cluster.control_plane_status(&cp).await.expect("status")["database"]["revision"]
        .as_i64()
        .expect("the control plane's revision");
    for dp in &dps {
        wait_for("the activations", Duration::from_secs(5), || async {
            cluster.status(dp).await.expect("status")["revision"].as_i64() >= Some(revision)
        })
        .await
        .expect("applied everywhere");
    }
    cp.process.kill();
    for dp in &dps {
        wait_for(
            "the control plane's loss",
            Duration::from_secs(10),
            || async {
                cluster.status(dp).await.expect("status")["controlPlane"]["connected"] == false
            },
        )
        .await
        .expect("the data plane noticed");
        let response = cluster
            .client
            .post(format!("{}/api/licenses/validate", dp.public_url))
            .json(&json!({ "licenseKey": key, "deviceId": device }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "answered locally");
    }
}

#[tokio::test]
async fn a_write_through_either_control_plane_reaches_all_data_planes() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp_a = cluster.start_control_plane().await.expect("cp a");
    let cp_b = cluster.start_control_plane().await.expect("cp b");
    let dp_a = cluster.start_data_plane(&cp_a).await.expect("dp a");
    let dp_b = cluster.start_data_plane(&cp_b).await.expect("dp b");
    for (writer, name) in [(&cp_a, "a"), (&cp_b, "b")] {
        let license = cluster
            .create_license(writer, json!({}))
            .await
            .expect("license");
        let key = license["licenseKey"].as_str().expect("key").to_owned();
        for dp in [&dp_a, &dp_b] {
            wait_for(
                &format!("a write through cp {name}"),
                Duration::from_secs(5),
                || async { cluster.verify(dp, &key).await.expect("verified").0 == 200 },
            )
            .await
            .expect("fanned out");
        }
    }
}
