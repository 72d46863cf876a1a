//! `/api/products`.

use integration_tests::app::{TestApp, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn create_get_update_list_delete() {
    let app = TestApp::spawn().await;
    let product = app.create_product("acme-app").await;
    assert_eq!(product["code"], "acme-app");
    assert_eq!(product["authorizationMethod"], "license-key");
    let id = product["id"].as_str().expect("an id");

    let fetched: Value = app.get_json(&format!("/api/products/{id}")).await;
    assert_eq!(fetched, product);

    let response = app
        .call_with(
            Method::PUT,
            &format!("/api/products/{id}"),
            &json!({ "name": "Acme Pro", "keyPrefix": "acme", "authorizationMethod": "user" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.expect("json");
    assert_eq!(updated["name"], "Acme Pro");
    assert_eq!(updated["keyPrefix"], "ACME");
    assert_eq!(updated["authorizationMethod"], "user");
    assert_eq!(updated["code"], "acme-app");

    app.create_product("second").await;
    let response = app.call(Method::GET, "/api/products?perPage=1").await;
    assert_eq!(response.headers()["x-total-count"], "2");
    assert!(
        response.headers()["link"]
            .to_str()
            .expect("ascii")
            .contains("page=2")
    );
    let page: Vec<Value> = response.json().await.expect("json");
    assert_eq!(page.len(), 1);

    let response = app
        .call(Method::DELETE, &format!("/api/products/{id}"))
        .await;
    assert_eq!(response.status(), 204);
    let response = app.call(Method::GET, &format!("/api/products/{id}")).await;
    assert_error(response, 404, "product_not_found").await;
}

#[tokio::test]
async fn licenses_get_their_product_key_prefix() {
    let app = TestApp::spawn().await;
    let response = app
        .call_with(
            Method::POST,
            "/api/products",
            &json!({ "code": "pfx", "name": "Prefixed", "keyPrefix": "ZED" }),
        )
        .await;
    let product: Value = response.json().await.expect("json");
    let customer = app.create_customer("owner@example.com").await;
    let license: Value = app
        .call_with(
            Method::POST,
            "/api/licenses",
            &json!({ "productId": product["id"], "customerId": customer["id"] }),
        )
        .await
        .json()
        .await
        .expect("json");
    let key = license["licenseKey"].as_str().expect("a key");
    assert!(key.starts_with("ZED-"), "{key}");
    assert_eq!(key.len(), "ZED-".len() + 29);
}

#[tokio::test]
async fn a_product_in_use_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let license = app.create_license(json!({})).await;
    let product_id = license["productId"].as_str().expect("product id");
    let response = app
        .call(Method::DELETE, &format!("/api/products/{product_id}"))
        .await;
    assert_error(response, 409, "product_in_use").await;
    let key = license["licenseKey"].as_str().expect("key");
    let response = app
        .call(Method::DELETE, &format!("/api/licenses/{key}"))
        .await;
    assert_eq!(response.status(), 204);
    let response = app
        .call(Method::DELETE, &format!("/api/products/{product_id}"))
        .await;
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn bad_product_input_is_refused_precisely() {
    let app = TestApp::spawn().await;
    app.create_product("taken").await;
    let cases = [
        (
            json!({ "code": "taken", "name": "Again" }),
            409,
            "product_code_taken",
        ),
        (
            json!({ "code": "Bad Code", "name": "x" }),
            400,
            "invalid_field",
        ),
        (json!({ "code": "ok", "name": "   " }), 400, "invalid_field"),
        (json!({ "code": "ok" }), 400, "missing_field"),
        (
            json!({ "code": "ok", "name": "x", "colour": "red" }),
            400,
            "unknown_field",
        ),
        (
            json!({ "code": "ok", "name": "x", "keyPrefix": "9AB" }),
            400,
            "invalid_key_prefix",
        ),
        (
            json!({ "code": "ok", "name": "x", "authorizationMethod": "magic" }),
            400,
            "invalid_authorization_method",
        ),
        (
            json!({ "code": "ok", "name": "x", "metadata": [1] }),
            400,
            "invalid_metadata",
        ),
        (json!({ "code": 5, "name": "x" }), 400, "invalid_field"),
    ];
    for (body, status, code) in cases {
        let response = app.call_with(Method::POST, "/api/products", &body).await;
        assert_error(response, status, code).await;
    }
    for (path, status, code) in [
        ("/api/products/not-a-uuid", 400, "invalid_uuid"),
        (
            "/api/products/6f1b2c4e-0000-4000-8000-000000000000",
            404,
            "product_not_found",
        ),
    ] {
        let response = app.call(Method::GET, path).await;
        assert_error(response, status, code).await;
    }
    let response = app.call(Method::GET, "/api/products?perPage=0").await;
    assert_error(response, 400, "invalid_query").await;
    let response = app.call(Method::GET, "/api/products?page=abc").await;
    assert_error(response, 400, "invalid_query").await;
}
