//! How long a fresh data plane takes to sync a large license set, how many bytes the snapshot
//! costs, how much memory the data plane then holds, and how fast it applies one change.
//! Ignored by default (it seeds 100,000 licenses, or `SCALE_LICENSES`); run it in release:
//! `SCALE_LICENSES=1000000 cargo test --release -p integration-tests --test cluster -- --ignored --nocapture snapshot_of`.

use std::time::{Duration, Instant};

use integration_tests::cluster::TestCluster;
use integration_tests::process::Process;
use license_shared::LicenseKey;
use serde_json::{Value, json};
use uuid::Uuid;

/// How many licenses to seed: `SCALE_LICENSES`, 100,000 by default.
fn licenses() -> usize {
    std::env::var("SCALE_LICENSES")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(100_000)
}

/// Inserts `count` licenses for one product and customer straight into the database, with
/// revisions taken from the counter like any other write.
async fn seed(database_url: &str, product: Uuid, customer: Uuid, count: usize) {
    let pool = sqlx::PgPool::connect(database_url).await.expect("pool");
    for chunk in 0..count.div_ceil(10_000) {
        let size = 10_000.min(count - chunk * 10_000);
        let ids: Vec<Uuid> = (0..size).map(|_| Uuid::new_v4()).collect();
        let keys: Vec<String> = (0..size)
            .map(|_| LicenseKey::generate(None).into_string())
            .collect();
        let mut tx = pool.begin().await.expect("tx");
        sqlx::query(
            "WITH next AS (UPDATE revision_counter SET value = value + 1 RETURNING value) \
             INSERT INTO licenses (id, key, product_id, customer_id, status, license_type, \
                                   max_activations, features, revision) \
             SELECT id, key, $3, $4, 'active', 'perpetual', 5, \
                    '{\"pro\": true, \"seats\": 10, \"tier\": \"gold\"}', \
                    next.value FROM unnest($1::uuid[], $2::text[]) AS t(id, key), next",
        )
        .bind(&ids)
        .bind(&keys)
        .bind(product)
        .bind(customer)
        .execute(&mut *tx)
        .await
        .expect("seeded");
        tx.commit().await.expect("committed");
    }
}

#[tokio::test]
#[ignore = "seeds 100,000 licenses (or SCALE_LICENSES); run explicitly to measure"]
async fn snapshot_of_100k_licenses() {
    let count = licenses();
    let mut cluster = TestCluster::new().await.expect("cluster");
    let cp = cluster.start_control_plane().await.expect("control plane");
    let license = cluster
        .create_license(&cp, json!({}))
        .await
        .expect("license");
    let product: Uuid = license["productId"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let customer: Uuid = license["customerId"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let seeding = Instant::now();
    seed(&cluster.database_url, product, customer, count).await;
    println!("seeded {count} licenses in {:?}", seeding.elapsed());

    let started = Instant::now();
    let dp = cluster.start_data_plane(&cp).await.expect("dp");
    let synced = started.elapsed();
    let status = cluster.status(&dp).await.expect("status");
    assert_eq!(status["licenses"], count + 1, "{status}");
    let resident = dp
        .process
        .resident_bytes()
        .expect("the data plane's resident memory");

    // One change at this scale: acknowledged on the control plane -> served by the data plane.
    let key = license["licenseKey"].as_str().expect("key");
    let mut delays = Vec::new();
    for round in 0..20 {
        let status = if round % 2 == 0 {
            "suspended"
        } else {
            "active"
        };
        let response = cluster
            .admin(&cp, reqwest::Method::PUT, &format!("/api/licenses/{key}"))
            .json(&json!({ "status": status }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        let acknowledged = Instant::now();
        loop {
            let (_, body) = cluster.verify(&dp, key).await.expect("verified");
            if body["status"] == status {
                break;
            }
            assert!(
                acknowledged.elapsed() < Duration::from_secs(5),
                "not propagated"
            );
        }
        delays.push(acknowledged.elapsed());
    }
    delays.sort();

    // The figures below come from the processes' logs: a missing line or key fails the test
    // rather than printing "null".
    let sent = log_line(&cp.process, "snapshot sent");
    let received = log_line(&dp.process, "snapshot received");
    let applied = log_line(&dp.process, "snapshot applied");
    println!(
        "control plane: {} ms reading PostgreSQL, {} ms encoding; data plane: {} ms decoding, \
         {} ms building its store",
        number(&sent, "database_ms"),
        number(&sent, "encoding_ms"),
        number(&received, "decoding_ms"),
        number(&applied, "building_ms"),
    );
    println!(
        "fresh data plane synced {} licenses in {synced:?} (process start to ready); \
         snapshot: {} bytes on the wire, {} ms to send; data plane resident memory {} MiB; \
         one change acknowledged -> served: median {:?}, worst of 20 {:?}",
        count + 1,
        number(&sent, "bytes"),
        number(&sent, "elapsed_ms"),
        resident / (1024 * 1024),
        delays[delays.len() / 2],
        delays[delays.len() - 1],
    );
    assert_eq!(
        number(&applied, "licenses"),
        count as u64 + 1,
        "the data plane applied the whole set: {applied}"
    );
    assert!(synced < Duration::from_secs(60));
}

/// The first JSON line of `process`'s log whose message is `message`; panics without one.
fn log_line(process: &Process, message: &str) -> Value {
    process
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == message)
        .unwrap_or_else(|| panic!("{} logged no {message:?}", process.name))
}

/// The number in `field` of a log line; panics when it is missing or not a number.
fn number(line: &Value, field: &str) -> u64 {
    line[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {field:?} in the log line {line}"))
}
