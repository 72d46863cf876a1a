//! The supervisor's promises, on real processes: a panic in a long-lived task makes the
//! process recover (the data plane's cluster client reconnects) or exit non-zero (the control
//! plane's revision listener) within a second, never hang; SIGTERM stops a data plane within
//! its `--shutdown-timeout` even while clients hold connections open.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use integration_tests::cluster::TestCluster;
use integration_tests::process::{Process, binaries, wait_for};
use serde_json::{Value, json};
use test_support::process::log::address;

/// Starts `binary` as `name` with `args` and the fault points `faults` armed.
fn start(
    cluster: &TestCluster,
    name: &str,
    binary: &str,
    args: &[String],
    faults: &str,
) -> Process {
    let program = binaries().expect("binaries").join(binary);
    Process::start(
        name,
        &program,
        args,
        &[
            ("RUST_LOG", "info"),
            ("LOG_FORMAT", "json"),
            ("LICENSE_FAULTS", faults),
        ],
        &cluster.dir,
    )
    .expect("started")
}

/// Waits until the log has a line containing `text`.
async fn wait_for_log(process: &Process, text: &str, timeout: Duration) {
    wait_for(&format!("{text:?} in the log"), timeout, || async {
        process.log_text().contains(text)
    })
    .await
    .unwrap_or_else(|error| panic!("{error}; log:\n{}", process.log_text()));
}

/// A data plane's public and status addresses, from its "data plane listening" line (it
/// binds port 0).
async fn listening(process: &mut Process) -> (SocketAddr, SocketAddr) {
    let line = process
        .wait_for_log("data plane listening", Duration::from_secs(30))
        .await
        .expect("listening");
    (
        address(&line, "public").expect("public"),
        address(&line, "status").expect("status"),
    )
}

#[tokio::test]
async fn a_panic_in_the_cluster_client_reconnects_within_a_second() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let cache = cluster.dir.join("dp-faulty");
    let args = cluster.data_plane_args(&cp, &cache, "cluster-dp");
    let mut dp = start(&cluster, "dp-faulty", "data-plane", &args, "cluster-client");
    let (public, status) = listening(&mut dp).await;
    let status_url = format!("http://{status}/status");

    wait_for_log(
        &dp,
        "the cluster connection panicked; reconnecting",
        Duration::from_secs(30),
    )
    .await;
    let panicked = Instant::now();
    let client = cluster.client.clone();
    wait_for("the second connection", Duration::from_secs(1), || async {
        let Ok(response) = client.get(&status_url).send().await else {
            return false;
        };
        let status: Value = response.json().await.unwrap_or_default();
        // The panic came before the first connection was attached: connected now means
        // connected again.
        status["controlPlane"]["connected"] == true
    })
    .await
    .unwrap_or_else(|error| panic!("{error}; log:\n{}", dp.log_text()));
    let reconnected_in = panicked.elapsed();

    // Still in sync afterwards: a license created now is served.
    let license = cluster
        .create_license(&cp, json!({}))
        .await
        .expect("license");
    let verify_url = format!("http://{public}/api/licenses/verify");
    let body = json!({ "licenseKey": license["licenseKey"] });
    wait_for("the new license", Duration::from_secs(5), || async {
        client
            .post(&verify_url)
            .json(&body)
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await
    .expect("the reconnected data plane is in sync");
    assert!(
        reconnected_in < Duration::from_secs(1),
        "took {reconnected_in:?}"
    );
}

#[tokio::test]
async fn a_panic_in_the_revision_listener_stops_the_control_plane_with_a_failure() {
    let cluster = TestCluster::new().await.expect("cluster");
    let args: Vec<String> = [
        "serve",
        "--database-url",
        &cluster.database_url,
        "--admin-listen",
        "127.0.0.1:0",
        "--cluster-listen",
        "127.0.0.1:0",
        "--cluster-cert",
        &cluster.cert("cluster-cp.crt"),
        "--cluster-cert-key",
        &cluster.cert("cluster-cp.key"),
        "--cluster-ca-cert",
        &cluster.cert("cluster-ca.crt"),
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let mut cp = start(
        &cluster,
        "cp-faulty",
        "control-plane",
        &args,
        "revision-listener",
    );
    wait_for_log(
        &cp,
        "panicked; stopping the process",
        Duration::from_secs(30),
    )
    .await;
    let status = cp
        .wait_exit(Duration::from_secs(1))
        .await
        .unwrap_or_else(|| panic!("still running a second after the panic:\n{}", cp.log_text()));
    assert!(!status.success(), "exit status {status}");
    let log = cp.log_text();
    assert!(log.contains("revision listener"), "{log}");
    assert!(log.contains("control plane stopped"), "{log}");
}

#[tokio::test]
async fn sigterm_stops_a_data_plane_within_its_deadline_despite_open_connections() {
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let cache = cluster.dir.join("dp-term");
    let mut args = cluster.data_plane_args(&cp, &cache, "cluster-dp");
    args.extend(["--shutdown-timeout".to_owned(), "2s".to_owned()]);
    let mut dp = start(&cluster, "dp-term", "data-plane", &args, "");
    let (public, status) = listening(&mut dp).await;
    let status_url = format!("http://{status}/status/ready");
    let client = cluster.client.clone();
    wait_for("the data plane", Duration::from_secs(30), || async {
        client
            .get(&status_url)
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await
    .expect("ready");

    // One client keeps its connection alive after an answer; another stops mid-request.
    let mut kept_alive = TcpStream::connect(public).expect("connect");
    kept_alive
        .write_all(
            b"POST /api/licenses/verify HTTP/1.1\r\nHost: dp\r\nContent-Type: application/json\r\n\
              Content-Length: 2\r\nConnection: keep-alive\r\n\r\n{}",
        )
        .expect("request");
    let mut answer = [0u8; 512];
    let read = kept_alive.read(&mut answer).expect("an answer");
    assert!(read > 0);
    let mut half_sent = TcpStream::connect(public).expect("connect");
    half_sent
        .write_all(
            b"POST /api/licenses/verify HTTP/1.1\r\nHost: dp\r\nContent-Length: 100\r\n\r\n{",
        )
        .expect("half a request");

    let asked = Instant::now();
    dp.ask_to_stop();
    let status = dp
        .wait_exit(Duration::from_secs(4))
        .await
        .unwrap_or_else(|| panic!("still running 4 s after SIGTERM:\n{}", dp.log_text()));
    let took = asked.elapsed();
    assert!(status.success(), "exit status {status}:\n{}", dp.log_text());
    assert!(took < Duration::from_millis(2_800), "took {took:?}");
    assert!(dp.log_text().contains("data plane stopped"));
    drop((kept_alive, half_sent));
}
