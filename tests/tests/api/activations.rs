//! `/api/licenses/{key}/activations`: listing devices and freeing seats.

use integration_tests::app::{TestApp, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn deactivating_a_device_frees_its_seat() {
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({ "maxActivations": 1 })).await;
    let key = license["licenseKey"].as_str().expect("key");
    let validate = |device: &'static str| {
        app.anonymous(Method::POST, "/api/licenses/validate")
            .json(&json!({ "licenseKey": key, "deviceId": device }))
            .send()
    };
    assert_eq!(validate("old-pc").await.expect("sent").status(), 200);
    assert_eq!(validate("new-pc").await.expect("sent").status(), 403);

    let devices: Vec<Value> = app
        .get_json(&format!("/api/licenses/{key}/activations"))
        .await;
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["deviceId"], "old-pc");

    let response = app
        .admin(
            Method::DELETE,
            &format!("/api/licenses/{key}/activations/old-pc"),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 204);
    assert_eq!(validate("new-pc").await.expect("sent").status(), 200);

    let active: Vec<Value> = app
        .get_json(&format!("/api/licenses/{key}/activations"))
        .await;
    assert_eq!(active.len(), 1);
    let history: Vec<Value> = app
        .admin(
            Method::GET,
            &format!("/api/licenses/{key}/activations?includeInactive=true"),
        )
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(history.len(), 2);
    assert!(
        history
            .iter()
            .any(|device| device["deactivatedAt"].is_string())
    );
}

#[tokio::test]
async fn unknown_devices_and_licenses_are_404() {
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({})).await;
    let key = license["licenseKey"].as_str().expect("key");
    let response = app
        .admin(
            Method::DELETE,
            &format!("/api/licenses/{key}/activations/ghost"),
        )
        .send()
        .await
        .expect("sent");
    assert_error(response, 404, "activation_not_found").await;
    let response = app
        .admin(
            Method::GET,
            "/api/licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDE/activations",
        )
        .send()
        .await
        .expect("sent");
    assert_error(response, 404, "license_not_found").await;
    let response = app
        .call(Method::GET, "/api/licenses/nope/activations")
        .await;
    assert_error(response, 400, "invalid_license_key").await;
    let response = app
        .admin(
            Method::GET,
            &format!("/api/licenses/{key}/activations?includeInactive=perhaps"),
        )
        .send()
        .await
        .expect("sent");
    assert_error(response, 400, "invalid_query").await;
}
