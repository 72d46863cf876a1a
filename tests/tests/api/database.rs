//! The database going away: requests get a prompt 503, readiness turns red, nothing is
//! half-written, and the control plane recovers by itself when the database is back.

use std::time::{Duration, Instant};

use integration_tests::app::{TestApp, assert_error};
use integration_tests::{pg, proxy::Proxy};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn an_unreachable_database_is_a_503_and_the_server_recovers() {
    let database_url = pg::fresh_database().await.expect("a database");
    let mut url = reqwest::Url::parse(&database_url).expect("a URL");
    let target = format!(
        "{}:{}",
        url.host_str().expect("a host"),
        url.port().unwrap_or(5432)
    );
    let target = tokio::net::lookup_host(target)
        .await
        .expect("resolved")
        .next()
        .expect("an address");
    let proxy = Proxy::start(target).await.expect("proxy");
    url.set_port(Some(proxy.addr.port())).expect("a port");
    url.set_host(Some("127.0.0.1")).expect("a host");
    let app = TestApp::spawn_with(url.as_str(), |args| {
        args.database.db_acquire_timeout = Duration::from_secs(1);
    })
    .await;
    let license = app.create_license(json!({})).await;
    let product_id = license["productId"].clone();
    let customer_id = license["customerId"].clone();

    proxy.cut();
    let started = Instant::now();
    let response = app
        .call_with(
            Method::POST,
            "/api/licenses",
            &json!({ "productId": product_id, "customerId": customer_id }),
        )
        .await;
    assert_error(response, 503, "database_unavailable").await;
    let response = app
        .anonymous(Method::POST, "/api/licenses/validate")
        .json(&json!({ "licenseKey": license["licenseKey"], "deviceId": "d" }))
        .send()
        .await
        .expect("sent");
    assert_error(response, 503, "database_unavailable").await;
    let response = app
        .anonymous(Method::GET, "/status/ready")
        .send()
        .await
        .expect("sent");
    assert_error(response, 503, "database_unavailable").await;
    let elapsed = started.elapsed();
    println!("three requests with the database away answered 503 in {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(15),
        "503s come promptly, not after a hang"
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app
            .anonymous(Method::GET, "/status/ready")
            .send()
            .await
            .expect("sent");
        if response.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the control plane did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = app
        .call_with(
            Method::POST,
            "/api/licenses",
            &json!({ "productId": product_id, "customerId": customer_id }),
        )
        .await;
    assert_eq!(response.status(), 201);

    let licenses: i64 = sqlx::query_scalar("SELECT count(*) FROM licenses")
        .fetch_one(&app.db)
        .await
        .expect("counted");
    let activations: i64 = sqlx::query_scalar("SELECT count(*) FROM activations")
        .fetch_one(&app.db)
        .await
        .expect("counted");
    assert_eq!(
        (licenses, activations),
        (2, 0),
        "the refused writes left nothing behind"
    );
}

#[tokio::test]
async fn status_reports_the_database_and_revision() {
    let app = TestApp::spawn().await;
    let status = || async {
        app.anonymous(Method::GET, "/status")
            .send()
            .await
            .expect("sent")
            .json::<serde_json::Value>()
            .await
            .expect("json")
    };
    // The first start already took a revision: the cluster's signing key.
    let before = status().await["database"]["revision"]
        .as_i64()
        .expect("a revision");
    app.create_product("one").await;
    let after = status().await;
    assert_eq!(after["database"]["reachable"], true);
    assert_eq!(after["database"]["revision"], before + 1);
}
