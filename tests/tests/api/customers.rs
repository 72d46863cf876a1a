//! `/api/customers`.

use integration_tests::app::{TestApp, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn create_get_update_list_delete() {
    let app = TestApp::spawn().await;
    let response = app
        .call_with(
            Method::POST,
            "/api/customers",
            &json!({
                "email": "ada@example.com",
                "firstName": "Ada",
                "companyName": "Engines Ltd",
                "metadata": { "crm": "42" }
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let customer: Value = response.json().await.expect("json");
    assert_eq!(customer["companyName"], "Engines Ltd");
    let id = customer["id"].as_str().expect("id");

    let updated: Value = app
        .call_with(
            Method::PUT,
            &format!("/api/customers/{id}"),
            &json!({ "firstName": null, "lastName": "Lovelace" }),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(updated["firstName"], Value::Null);
    assert_eq!(updated["lastName"], "Lovelace");
    assert_eq!(updated["companyName"], "Engines Ltd");

    let list: Vec<Value> = app.get_json("/api/customers").await;
    assert_eq!(list.len(), 1);

    let response = app
        .call(Method::DELETE, &format!("/api/customers/{id}"))
        .await;
    assert_eq!(response.status(), 204);
    let response = app
        .call(Method::DELETE, &format!("/api/customers/{id}"))
        .await;
    assert_error(response, 404, "customer_not_found").await;
}

#[tokio::test]
async fn emails_are_unique_whatever_their_case() {
    let app = TestApp::spawn().await;
    app.create_customer("Ada@Example.com").await;
    let response = app
        .call_with(
            Method::POST,
            "/api/customers",
            &json!({ "email": "ada@example.COM" }),
        )
        .await;
    assert_error(response, 409, "customer_email_taken").await;
}

#[tokio::test]
async fn a_customer_with_licenses_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({})).await;
    let customer_id = license["customerId"].as_str().expect("customer id");
    let response = app
        .call(Method::DELETE, &format!("/api/customers/{customer_id}"))
        .await;
    assert_error(response, 409, "customer_in_use").await;
}

#[tokio::test]
async fn bad_customer_input_is_refused_precisely() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({ "email": "not-an-email" }), 400, "invalid_email"),
        (
            json!({ "email": "a@b.co", "firstName": "x".repeat(300) }),
            400,
            "value_too_long",
        ),
        (
            json!({ "email": "a@b.co", "nickname": "x" }),
            400,
            "unknown_field",
        ),
        (json!({}), 400, "missing_field"),
    ];
    for (body, status, code) in cases {
        let response = app.call_with(Method::POST, "/api/customers", &body).await;
        assert_error(response, status, code).await;
    }
}
