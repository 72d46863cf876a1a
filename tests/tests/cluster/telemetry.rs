//! Usage telemetry: the requests data planes serve are counted in the control plane's
//! `/license/report`, exactly, also across a control-plane outage; validations show up as the
//! license's last activity; data planes serve the same signed documents as the control plane.

use std::time::Duration;

use integration_tests::cluster::{ControlPlane, DataPlaneProcess, TestCluster};
use integration_tests::process::wait_for;
use reqwest::Method;
use serde_json::{Value, json};

/// Requests sent to data planes, counted as they are sent.
#[derive(Default)]
struct Sent(u64);

impl Sent {
    async fn verify(&mut self, cluster: &TestCluster, dp: &DataPlaneProcess, key: &str) -> u16 {
        self.0 += 1;
        cluster
            .verify(dp, key)
            .await
            .map_or(0, |(status, _)| status)
    }
}

async fn reported(cluster: &TestCluster, cp: &ControlPlane) -> u64 {
    let report: Value = cluster
        .admin(cp, Method::GET, "/license/report")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    report["counters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|counter| counter["request_count"].as_u64())
        .sum()
}

async fn wait_reported(cluster: &TestCluster, cp: &ControlPlane, expected: u64) {
    let result = wait_for(
        "the report to count every request",
        Duration::from_secs(15),
        || async { reported(cluster, cp).await == expected },
    )
    .await;
    let actual = reported(cluster, cp).await;
    assert!(result.is_ok(), "reported {actual}, sent {expected}");
}

#[tokio::test]
async fn the_report_counts_exactly_the_requests_data_planes_served() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let mut cp = cluster.start_control_plane().await.expect("control plane");
    let dps = [
        cluster.start_data_plane(&cp).await.expect("dp"),
        cluster.start_data_plane(&cp).await.expect("dp"),
    ];
    let license = cluster
        .create_license(&cp, json!({}))
        .await
        .expect("license");
    let key = license["licenseKey"].as_str().expect("key").to_owned();
    let mut sent = Sent::default();
    for dp in &dps {
        while sent.verify(&cluster, dp, &key).await != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for _ in 0..37 {
        assert_eq!(sent.verify(&cluster, &dps[0], &key).await, 200);
    }
    for _ in 0..23 {
        assert_eq!(sent.verify(&cluster, &dps[1], &key).await, 200);
    }

    // The data plane's document is the control plane's, byte for byte.
    let id = license["id"].as_str().expect("id");
    let kong: Value = cluster
        .admin(&cp, Method::GET, &format!("/licenses/{id}"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    sent.0 += 1;
    let document = cluster
        .client
        .get(format!("{}/api/licenses/{key}/document", dps[1].public_url))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert_eq!(kong["payload"].as_str(), Some(document.as_str()));

    // A request no public route takes is answered in the error shape and not counted.
    let public_get = |path: &str| {
        cluster
            .client
            .get(format!("{}{path}", dps[0].public_url))
            .send()
    };
    for (path, status, code) in [
        ("/api/no-such-endpoint", 404, "not_found"),
        ("/api/licenses/verify", 405, "method_not_allowed"),
    ] {
        let response = public_get(path).await.expect("sent");
        assert_eq!(response.status(), status, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["code"], code, "{path}");
    }

    wait_reported(&cluster, &cp, sent.0).await;
    // Counted once: still exact a while later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reported(&cluster, &cp).await, sent.0);

    // Requests served while the control plane is down are reported when it is back.
    cp.process.kill();
    for _ in 0..10 {
        assert_eq!(sent.verify(&cluster, &dps[0], &key).await, 200);
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster
        .restart_control_plane(&mut cp)
        .await
        .expect("control plane back");
    wait_reported(&cluster, &cp, sent.0).await;

    // The validations reached the license as its last activity (Craft's lastActivityOn).
    let craft: Value = cluster
        .admin(&cp, Method::GET, &format!("/v1/plugin-licenses/{key}"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let last = craft["license"]["lastActivityOn"]
        .as_str()
        .expect("last activity");
    let last = chrono::DateTime::parse_from_rfc3339(last).expect("rfc3339");
    assert!((chrono::Utc::now() - last.with_timezone(&chrono::Utc)).num_seconds() < 60);
}
