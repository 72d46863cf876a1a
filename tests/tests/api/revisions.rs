//! The change feed's core property: revision order equals commit order, so a reader that
//! repeatedly asks for "changes after the highest revision I have seen" never misses a write,
//! however many writers commit concurrently.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use control_plane::db::changes;
use control_plane::db::customers::{self, CustomerFields};
use control_plane::db::licenses::{self, LicenseChanges};
use integration_tests::app::TestApp;
use license_shared::LicenseKey;
use license_shared::protocol::EntityKind;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

const WRITERS: usize = 8;
const WRITES_PER_WRITER: usize = 150;

#[tokio::test]
async fn a_polling_reader_never_misses_a_concurrent_write() {
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({})).await;
    let key = LicenseKey::parse(license["licenseKey"].as_str().expect("key")).expect("a key");
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(WRITERS).expect("small") + 4)
        .connect(&app.database_url)
        .await
        .expect("pool");
    let start_revision = control_plane::db::revision::current(&pool)
        .await
        .expect("revision");

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (pool, done) = (pool.clone(), done.clone());
        tokio::spawn(async move {
            let mut high_water = start_revision;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = changes::after(&pool, high_water, 10_000)
                    .await
                    .expect("polled");
                for change in &batch {
                    assert!(change.revision > high_water, "the feed only moves forward");
                    high_water = change.revision;
                }
                seen.extend(batch);
                if finished {
                    return seen;
                }
            }
        })
    };

    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (pool, key) = (pool.clone(), key.clone());
            tokio::spawn(async move {
                let mut inserted = Vec::new();
                let mut last_license_revision = 0;
                for write in 0..WRITES_PER_WRITER {
                    if write % 5 == 0 {
                        // Contend on one license row as well as on the counter.
                        let changes = LicenseChanges {
                            notes: Some(Some(format!("writer {writer} write {write}"))),
                            ..LicenseChanges::default()
                        };
                        let record = licenses::update(&pool, &key, changes)
                            .await
                            .expect("updated")
                            .expect("exists");
                        last_license_revision = record.license.revision;
                    } else {
                        let fields = CustomerFields {
                            email: format!("w{writer}-{write}-{}@example.com", Uuid::new_v4()),
                            metadata: json!({}),
                            ..CustomerFields::default()
                        };
                        inserted.push(customers::insert(&pool, fields).await.expect("inserted").id);
                    }
                }
                (inserted, last_license_revision)
            })
        })
        .collect();
    let mut inserted = HashSet::new();
    let mut final_license_revision = 0;
    for writer in writers {
        let (ids, license_revision) = writer.await.expect("writer finished");
        inserted.extend(ids);
        final_license_revision = final_license_revision.max(license_revision);
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("reader finished");

    let seen_customers: HashSet<Uuid> = seen
        .iter()
        .filter(|change| change.entity == EntityKind::Customer)
        .map(|change| change.id)
        .collect();
    let missed = inserted.difference(&seen_customers).count();
    let total_writes = WRITERS * WRITES_PER_WRITER;
    println!(
        "{WRITERS} writers x {WRITES_PER_WRITER} writes in {elapsed:?} ({:.0} writes/s); \
         reader saw {} changes, missed {missed}",
        total_writes as f64 / elapsed.as_secs_f64(),
        seen.len()
    );
    assert_eq!(missed, 0, "the reader missed committed writes");
    assert!(
        seen.iter()
            .any(|change| change.entity == EntityKind::License
                && change.revision == final_license_revision),
        "the reader saw the license's final revision {final_license_revision}"
    );
    let distinct: BTreeSet<i64> = seen.iter().map(|change| change.revision).collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "no revision was handed out twice"
    );
}

#[tokio::test]
async fn deletes_leave_tombstones_in_the_feed() {
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({})).await;
    let before = control_plane::db::revision::current(&app.db)
        .await
        .expect("revision");
    let key = license["licenseKey"].as_str().expect("key");
    let response = app
        .admin(reqwest::Method::DELETE, &format!("/api/licenses/{key}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);
    let feed = changes::after(&app.db, before, 100).await.expect("feed");
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].entity, EntityKind::License);
    assert!(feed[0].deleted);
    assert_eq!(feed[0].id.to_string(), license["id"].as_str().expect("id"));
}
