//! The database-backed public endpoints: `POST /api/licenses/verify` and
//! `POST /api/licenses/validate`, including the activation limit under concurrency.

use std::time::Instant;

use integration_tests::app::{TestApp, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

async fn verify(app: &TestApp, body: Value) -> reqwest::Response {
    app.anonymous(Method::POST, "/api/licenses/verify")
        .json(&body)
        .send()
        .await
        .expect("sent")
}

async fn validate(app: &TestApp, body: Value) -> reqwest::Response {
    app.anonymous(Method::POST, "/api/licenses/validate")
        .json(&body)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn verify_answers_in_the_seed_shape() {
    let app = TestApp::spawn().await;
    let license = app
        .create_license(json!({
            "features": { "api_access": true },
            "expiresAt": "2099-01-15T00:00:00Z"
        }))
        .await;
    let response = verify(&app, json!({ "licenseKey": license["licenseKey"] })).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["valid"], true);
    assert_eq!(body["status"], "active");
    assert_eq!(body["features"], json!({ "api_access": true }));
    assert_eq!(body["expiresAt"], "2099-01-15T00:00:00Z");
    assert!(body.get("reason").is_none());
    assert!(body.get("privateNotes").is_none());
}

#[tokio::test]
async fn verify_says_why_a_license_is_not_valid() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({ "status": "suspended" }),
            "suspended",
            "license_suspended",
        ),
        (json!({ "status": "revoked" }), "revoked", "license_revoked"),
        (
            json!({ "expiresAt": "2020-01-01T00:00:00Z" }),
            "expired",
            "license_expired",
        ),
        (
            json!({ "startsAt": "2099-01-01T00:00:00Z" }),
            "active",
            "license_not_started",
        ),
    ];
    for (fields, status, reason) in cases {
        let license = app.create_license(fields).await;
        let body: Value = verify(&app, json!({ "licenseKey": license["licenseKey"] }))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(
            (&body["valid"], &body["status"], &body["reason"]),
            (&json!(false), &json!(status), &json!(reason)),
            "{body}"
        );
    }

    let license = app.create_license(json!({})).await;
    let key = &license["licenseKey"];
    let other_product = app.create_product("other").await;
    let body: Value = verify(
        &app,
        json!({ "licenseKey": key, "productId": other_product["id"] }),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(body["reason"], "product_mismatch");
    let body: Value = verify(
        &app,
        json!({ "licenseKey": key, "productId": license["productId"] }),
    )
    .await
    .json()
    .await
    .expect("json");
    assert_eq!(body["valid"], true);
    let body: Value = verify(&app, json!({ "licenseKey": key, "deviceId": "laptop" }))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["reason"], "device_not_activated");
    assert_eq!(
        validate(&app, json!({ "licenseKey": key, "deviceId": "laptop" }))
            .await
            .status(),
        200
    );
    let body: Value = verify(&app, json!({ "licenseKey": key, "deviceId": "laptop" }))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["valid"], true);
}

#[tokio::test]
async fn verify_refuses_bad_input() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({ "licenseKey": "ABCDE-ABCDE-ABCDE-ABCDE-ABCDE" }),
            404,
            "license_not_found",
        ),
        (
            json!({ "licenseKey": "RUSTBILL-XXXX-XXXX-XXXX" }),
            400,
            "invalid_license_key",
        ),
        (json!({ "licenseKey": 12 }), 400, "invalid_field"),
        (json!({}), 400, "missing_field"),
        (
            json!({ "licenseKey": "ABCDE-ABCDE-ABCDE-ABCDE-ABCDE", "productId": "x" }),
            400,
            "invalid_uuid",
        ),
    ];
    for (body, status, code) in cases {
        assert_error(verify(&app, body).await, status, code).await;
    }
    let response = app
        .anonymous(Method::POST, "/api/licenses/verify")
        .body("{oops")
        .send()
        .await
        .expect("sent");
    assert_error(response, 400, "malformed_json").await;
}

#[tokio::test]
async fn validate_activates_once_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({ "maxActivations": 1 })).await;
    let key = &license["licenseKey"];
    let request = json!({ "licenseKey": key, "deviceId": "laptop-1", "deviceName": "Ada's laptop",
                          "clientFacts": { "os": "linux" } });

    let first: Value = validate(&app, request.clone())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(first["valid"], true);
    assert_eq!(first["alreadyActivated"], false);
    assert_eq!(first["currentActivations"], 1);
    assert_eq!(first["activation"]["deviceName"], "Ada's laptop");

    let again = validate(&app, request).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["alreadyActivated"], true);
    assert_eq!(
        again["activation"]["activatedAt"],
        first["activation"]["activatedAt"]
    );

    let response = validate(&app, json!({ "licenseKey": key, "deviceId": "laptop-2" })).await;
    assert_error(response, 403, "activation_limit_reached").await;
}

#[tokio::test]
async fn validate_refuses_invalid_licenses_and_bad_input() {
    let app = TestApp::spawn().await;
    let suspended = app.create_license(json!({ "status": "suspended" })).await;
    let response = validate(
        &app,
        json!({ "licenseKey": suspended["licenseKey"], "deviceId": "d" }),
    )
    .await;
    assert_error(response, 403, "license_suspended").await;
    let expired = app
        .create_license(json!({ "expiresAt": "2001-01-01" }))
        .await;
    let response = validate(
        &app,
        json!({ "licenseKey": expired["licenseKey"], "deviceId": "d" }),
    )
    .await;
    assert_error(response, 403, "license_expired").await;

    let license = app.create_license(json!({})).await;
    let key = &license["licenseKey"];
    let cases = [
        (
            json!({ "licenseKey": key, "deviceId": "" }),
            400,
            "invalid_device_id",
        ),
        (
            json!({ "licenseKey": key, "deviceId": "x".repeat(300) }),
            400,
            "invalid_device_id",
        ),
        (json!({ "licenseKey": key }), 400, "missing_field"),
        (
            json!({ "licenseKey": key, "deviceId": "d", "clientFacts": 1 }),
            400,
            "invalid_field",
        ),
        (
            json!({ "licenseKey": "ABCDE-ABCDE-ABCDE-ABCDE-ABCDE", "deviceId": "d" }),
            404,
            "license_not_found",
        ),
    ];
    for (body, status, code) in cases {
        assert_error(validate(&app, body).await, status, code).await;
    }
    let active: i64 = sqlx::query_scalar("SELECT count(*) FROM activations")
        .fetch_one(&app.db)
        .await
        .expect("counted");
    assert_eq!(active, 0, "refused requests activated nothing");
}

#[tokio::test]
async fn the_activation_limit_holds_under_concurrent_validates() {
    const DEVICES: usize = 100;
    const LIMIT: usize = 5;
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({ "maxActivations": LIMIT })).await;
    let key = license["licenseKey"].clone();

    let started = Instant::now();
    let calls = (0..DEVICES).map(|device| {
        let (client, url, key) = (
            app.client.clone(),
            app.url("/api/licenses/validate"),
            key.clone(),
        );
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
    });
    let mut accepted = 0;
    let mut refused = 0;
    for call in calls.collect::<Vec<_>>() {
        match call.await.expect("joined") {
            (200, _) => accepted += 1,
            (403, Some(code)) if code == "activation_limit_reached" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    println!(
        "{DEVICES} concurrent validates, limit {LIMIT}: {accepted} accepted, {refused} refused in {:?}",
        started.elapsed()
    );
    assert_eq!((accepted, refused), (LIMIT, DEVICES - LIMIT));
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM activations WHERE deactivated_at IS NULL")
            .fetch_one(&app.db)
            .await
            .expect("counted");
    assert_eq!(stored, LIMIT as i64);
}

#[tokio::test]
async fn one_device_validating_concurrently_takes_one_seat() {
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({ "maxActivations": 3 })).await;
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/api/licenses/validate"));
            let body = json!({ "licenseKey": license["licenseKey"], "deviceId": "same-device" });
            tokio::spawn(async move {
                client
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .expect("sent")
                    .status()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.expect("joined"), 200);
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM activations")
        .fetch_one(&app.db)
        .await
        .expect("counted");
    assert_eq!(stored, 1);
}
