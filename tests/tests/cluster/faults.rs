//! The cluster link under network faults, with a fault-injecting TCP proxy between a data
//! plane and the control plane (TLS passes through it untouched): added latency, a peer that
//! stops reading, a cut, and a half-open link that forwards nothing. No wrong answer, no hang,
//! a reconnect within the backoff ceiling, and activations answered 503 within their deadline
//! and never decided after it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use integration_tests::cluster::{ControlPlane, DataPlane, TestCluster};
use integration_tests::process::wait_for;
use integration_tests::proxy::{Direction, Proxy};
use reqwest::Method;
use serde_json::{Value, json};

/// The data plane's reconnect backoff ceiling (cluster client), plus its connect timeout.
const RECONNECT_BOUND: Duration = Duration::from_secs(15);
/// The tests' `--activation-timeout` (3 s), plus scheduling slack.
const ANSWER_BOUND: Duration = Duration::from_millis(3_700);

struct Faulty {
    cluster: TestCluster,
    cp: ControlPlane,
    dp: DataPlane,
    proxy: Proxy,
    key: String,
}

impl Faulty {
    /// A control plane, a data plane connected to it through a proxy, and a synced license
    /// with 5 seats.
    async fn new() -> Self {
        let mut cluster = TestCluster::new().await.expect("cluster");
        let cp = cluster.start_control_plane().await.expect("control plane");
        let proxy = Proxy::start(cp.cluster_addr).await.expect("proxy");
        let cache = cluster.dir.join("dp-behind-proxy");
        let mut args = cluster.data_plane_args(&cp, &cache, "cluster-dp");
        let at = args
            .iter()
            .position(|arg| arg == "--cluster-control-plane")
            .expect("flag");
        args[at + 1] = proxy.addr.to_string();
        let dp = cluster
            .spawn_data_plane("dp-behind-proxy", args)
            .await
            .expect("data plane");
        let license = cluster
            .create_license(&cp, json!({"maxActivations": 5}))
            .await
            .expect("license");
        let key = license["licenseKey"].as_str().expect("key").to_owned();
        let faulty = Faulty {
            cluster,
            cp,
            dp,
            proxy,
            key,
        };
        faulty.wait_served(&faulty.key.clone()).await;
        faulty
    }

    async fn wait_served(&self, key: &str) {
        wait_for(
            "the license on the data plane",
            Duration::from_secs(20),
            || async {
                self.cluster
                    .verify(&self.dp, key)
                    .await
                    .is_ok_and(|(status, _)| status == 200)
            },
        )
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", self.dp.process.log_text()));
    }

    /// Validates `device` on the license: (status, code or "valid", how long it took).
    async fn validate(&self, device: &str) -> (u16, String, Duration) {
        let started = Instant::now();
        let response = self
            .cluster
            .client
            .post(format!("{}/api/licenses/validate", self.dp.public_url))
            .json(&json!({"licenseKey": self.key, "deviceId": device}))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .expect("an answer, not a hang");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        let code = body["code"].as_str().unwrap_or("valid").to_owned();
        (status, code, started.elapsed())
    }

    /// When `device` was activated on the license, if it is active.
    async fn activated_at(&self, device: &str) -> Option<DateTime<Utc>> {
        let list: Value = self
            .cluster
            .admin(
                &self.cp,
                Method::GET,
                &format!("/api/licenses/{}/activations", self.key),
            )
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        let activations = list
            .as_array()
            .or_else(|| list["data"].as_array())
            .cloned()
            .unwrap_or_default();
        activations
            .iter()
            .find(|activation| activation["deviceId"] == device)
            .and_then(|activation| activation["activatedAt"].as_str())
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc))
    }

    async fn connections(&self) -> (bool, u64) {
        let status = self.cluster.status(&self.dp).await.expect("status");
        (
            status["controlPlane"]["connected"] == true,
            status["controlPlane"]["connections"]
                .as_u64()
                .unwrap_or_default(),
        )
    }

    /// Waits until the data plane is connected on a connection newer than `before`.
    async fn wait_reconnected(&self, before: u64, within: Duration) -> Duration {
        let started = Instant::now();
        wait_for("a new connection", within, || async {
            let (connected, connections) = self.connections().await;
            connected && connections > before
        })
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", self.dp.process.log_text()));
        started.elapsed()
    }

    /// Validating the new `device` is refused 503 within the deadline while verify keeps
    /// answering from memory; returns when the 503 came.
    async fn assert_refused_in_time(&self, device: &str) -> DateTime<Utc> {
        let (status, code, took) = self.validate(device).await;
        let answered = Utc::now();
        assert_eq!((status, code.as_str()), (503, "control_plane_unavailable"));
        assert!(took < ANSWER_BOUND, "answered in {took:?}");
        self.assert_verify_served().await;
        answered
    }

    /// Verify keeps answering from memory, correctly.
    async fn assert_verify_served(&self) {
        let (status, body) = self
            .cluster
            .verify(&self.dp, &self.key)
            .await
            .expect("verify");
        assert_eq!(
            (status, body["valid"].clone()),
            (200, json!(true)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn latency_slows_the_link_but_every_answer_is_right() {
    let fx = Faulty::new().await;
    fx.proxy
        .set_latency(Direction::Up, Duration::from_millis(150));
    fx.proxy
        .set_latency(Direction::Down, Duration::from_millis(150));
    let (status, code, took) = fx.validate("slow-1").await;
    assert_eq!((status, code.as_str()), (200, "valid"), "took {took:?}");
    assert!(
        took >= Duration::from_millis(300),
        "a round trip through the delay: {took:?}"
    );
    assert!(fx.activated_at("slow-1").await.is_some());
    let second = fx
        .cluster
        .create_license(&fx.cp, json!({}))
        .await
        .expect("license");
    fx.wait_served(second["licenseKey"].as_str().expect("key"))
        .await;
    fx.assert_verify_served().await;
}

#[tokio::test]
async fn a_control_plane_that_goes_silent_is_dropped_and_nothing_is_decided_late() {
    let fx = Faulty::new().await;
    let (_, before) = fx.connections().await;
    // The proxy stops reading what the control plane sends: the data plane hears nothing
    // (a read already under way may still pass one frame through).
    fx.proxy.stop_reading(Direction::Down);
    fx.validate("stalled-0").await;
    let answered = fx.assert_refused_in_time("stalled-1").await;
    // The request reached the control plane, which may have decided it in time; it must not
    // have been decided after the client was told 503.
    if let Some(at) = fx.activated_at("stalled-1").await {
        assert!(
            at < answered,
            "activated at {at}, after the 503 at {answered}"
        );
    }
    // The data plane notices the silence and drops the connection (restored earlier, the
    // link would simply carry on: the buffered pings arrive and nothing needs a reconnect).
    wait_for(
        "the silence to be noticed",
        Duration::from_secs(6),
        || async { !fx.connections().await.0 },
    )
    .await
    .expect("dropped");
    fx.proxy.restore();
    let reconnected = fx.wait_reconnected(before, RECONNECT_BOUND).await;
    println!("reconnected {reconnected:?} after the link was restored");
    let (status, _, _) = fx.validate("after-stall").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_half_open_link_answers_503_in_time_and_never_activates_later() {
    let fx = Faulty::new().await;
    let (_, before) = fx.connections().await;
    fx.proxy.black_hole();
    fx.assert_refused_in_time("half-open-1").await;
    // The data plane notices the silence and drops the connection.
    wait_for(
        "the silence to be noticed",
        Duration::from_secs(6),
        || async { !fx.connections().await.0 },
    )
    .await
    .expect("dropped");
    fx.proxy.restore();
    let reconnected = fx.wait_reconnected(before, RECONNECT_BOUND).await;
    println!("reconnected {reconnected:?} after the link was restored");
    // The queued request died with its connection: never sent, never decided.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fx.activated_at("half-open-1").await, None);
    let (status, _, _) = fx.validate("after-half-open").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_cut_link_reconnects_within_the_backoff_ceiling() {
    let fx = Faulty::new().await;
    let (_, before) = fx.connections().await;
    fx.proxy.cut();
    fx.assert_refused_in_time("cut-1").await;
    // Down long enough for the backoff to grow.
    tokio::time::sleep(Duration::from_secs(4)).await;
    fx.proxy.restore();
    let reconnected = fx.wait_reconnected(before, RECONNECT_BOUND).await;
    println!("reconnected {reconnected:?} after the link was restored");
    assert_eq!(fx.activated_at("cut-1").await, None);
    let changed = fx
        .cluster
        .create_license(&fx.cp, json!({}))
        .await
        .expect("license");
    fx.wait_served(changed["licenseKey"].as_str().expect("key"))
        .await;
}
