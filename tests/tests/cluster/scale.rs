//! How long a fresh data plane takes to sync a large license set, and how many bytes the
//! snapshot costs. Ignored by default (it seeds 100,000 licenses); run it with
//! `cargo test -p integration-tests --test cluster -- --ignored --nocapture snapshot_of`.

use std::time::{Duration, Instant};

use integration_tests::cluster::TestCluster;
use license_shared::LicenseKey;
use serde_json::{Value, json};
use uuid::Uuid;

const LICENSES: usize = 100_000;

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
             SELECT id, key, $3, $4, 'active', 'perpetual', 5, '{\"pro\": true, \"seats\": 10}', \
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
#[ignore = "seeds 100,000 licenses; run explicitly to measure"]
async fn snapshot_of_100k_licenses() {
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
    seed(&cluster.database_url, product, customer, LICENSES).await;
    println!("seeded {LICENSES} licenses in {:?}", seeding.elapsed());

    let started = Instant::now();
    let dp = cluster.start_data_plane(&cp).await.expect("dp");
    let synced = started.elapsed();
    let status = cluster.status(&dp).await.expect("status");
    assert_eq!(status["licenses"], LICENSES + 1, "{status}");
    let rss_kb = std::fs::read_to_string("/proc/self/status").ok();
    let _ = rss_kb;

    let snapshot_line = cp
        .process
        .log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "snapshot sent")
        .expect("the control plane logged the snapshot");
    println!(
        "fresh data plane synced {} licenses in {synced:?} (process start to ready); \
         snapshot: {} bytes on the wire, {} ms to send",
        LICENSES + 1,
        snapshot_line["bytes"],
        snapshot_line["elapsed_ms"]
    );
    assert!(synced < Duration::from_secs(60));
}
