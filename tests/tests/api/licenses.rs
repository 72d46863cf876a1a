//! `/api/licenses`: CRUD by key, filters, pagination, and every kind of bad input.

use integration_tests::app::{TestApp, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn create_then_read_update_and_delete_by_key() {
    let app = TestApp::spawn().await;
    let license = app
        .create_license(json!({
            "maxActivations": 5,
            "features": { "api_access": true, "max_users": 50 },
            "expiresAt": "2099-01-15T00:00:00Z",
            "edition": "pro",
            "notes": "for the build farm",
            "privateNotes": "paid by invoice 7",
            "metadata": { "orderId": "A-1" }
        }))
        .await;
    assert_eq!(license["status"], "active");
    assert_eq!(license["licenseType"], "time-limited");
    assert_eq!(license["maxActivations"], 5);
    assert_eq!(license["currentActivations"], 0);
    assert_eq!(license["features"]["max_users"], 50);
    assert_eq!(license["expiresAt"], "2099-01-15T00:00:00Z");
    assert_eq!(license["privateNotes"], "paid by invoice 7");
    assert!(license["number"].as_i64().is_some_and(|n| n > 0));
    let key = license["licenseKey"].as_str().expect("key");
    assert_eq!(key.split('-').count(), 5, "{key}");

    // Keys are case-insensitive on the way in.
    let fetched: Value = app
        .admin(
            Method::GET,
            &format!("/api/licenses/{}", key.to_lowercase()),
        )
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(fetched, license);

    let response = app
        .call_with(
            Method::PUT,
            &format!("/api/licenses/{key}"),
            &json!({
                "status": "suspended",
                "maxActivations": null,
                "features": { "api_access": false },
                "expiresAt": null
            }),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.expect("json");
    assert_eq!(updated["status"], "suspended");
    assert_eq!(updated["maxActivations"], Value::Null);
    assert_eq!(updated["features"], json!({ "api_access": false }));
    assert_eq!(updated["expiresAt"], Value::Null);
    assert_eq!(updated["edition"], "pro", "untouched fields stay");
    assert!(updated["revision"].as_i64() > license["revision"].as_i64());

    let response = app
        .call(Method::DELETE, &format!("/api/licenses/{key}"))
        .await;
    assert_eq!(response.status(), 204);
    let response = app.call(Method::GET, &format!("/api/licenses/{key}")).await;
    assert_error(response, 404, "license_not_found").await;
    let response = app
        .call(Method::DELETE, &format!("/api/licenses/{key}"))
        .await;
    assert_error(response, 404, "license_not_found").await;
}

#[tokio::test]
async fn expiry_is_derived_from_the_clock() {
    let app = TestApp::spawn().await;
    let license = app
        .create_license(json!({ "expiresAt": "2020-01-01T00:00:00Z" }))
        .await;
    assert_eq!(license["status"], "expired");
}

#[tokio::test]
async fn listing_filters_and_paginates() {
    let app = TestApp::spawn().await;
    let first = app.create_license(json!({})).await;
    let product_id = first["productId"].clone();
    let customer_id = first["customerId"].clone();
    for extra in [
        json!({ "status": "suspended" }),
        json!({ "expiresAt": "2020-01-01" }),
        json!({}),
    ] {
        let mut body = json!({ "productId": product_id, "customerId": customer_id });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        let response = app.call_with(Method::POST, "/api/licenses", &body).await;
        assert_eq!(response.status(), 201);
    }
    app.create_license(json!({})).await; // another product and customer

    assert_eq!(count(&app, "").await, (5, 5));
    assert_eq!(count(&app, "status=active").await, (3, 3));
    assert_eq!(count(&app, "status=suspended").await, (1, 1));
    assert_eq!(count(&app, "status=expired").await, (1, 1));
    assert_eq!(count(&app, "status=revoked").await, (0, 0));
    let by_product = format!("productId={}", product_id.as_str().expect("id"));
    assert_eq!(count(&app, &by_product).await, (4, 4));
    let by_customer = format!(
        "customerId={}&status=active",
        customer_id.as_str().expect("id")
    );
    assert_eq!(count(&app, &by_customer).await, (2, 2));
    assert_eq!(count(&app, "perPage=2").await, (5, 2));
    assert_eq!(count(&app, "perPage=2&page=3").await, (5, 1));
    assert_eq!(count(&app, "perPage=2&page=9").await, (5, 0));

    let response = app
        .call(Method::GET, "/api/licenses?perPage=2&page=2")
        .await;
    assert_eq!(response.headers()["x-total-pages"], "3");
    let link = response.headers()["link"].to_str().expect("ascii");
    assert!(link.contains("page=3&perPage=2>; rel=\"next\""), "{link}");
    assert!(link.contains("page=1&perPage=2>; rel=\"prev\""), "{link}");

    for (query, code) in [
        ("status=bogus", "invalid_status"),
        ("productId=nope", "invalid_uuid"),
        ("customerId=nope", "invalid_uuid"),
        ("page=0", "invalid_query"),
        ("perPage=501", "invalid_query"),
        ("page=-1", "invalid_query"),
    ] {
        let response = app
            .call(Method::GET, &format!("/api/licenses?{query}"))
            .await;
        assert_error(response, 400, code).await;
    }
}

/// (X-Total-Count, items on the page) of a license listing.
async fn count(app: &TestApp, query: &str) -> (usize, usize) {
    let response = app
        .call(Method::GET, &format!("/api/licenses?{query}"))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    let total: usize = response.headers()["x-total-count"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a number");
    let page: Vec<Value> = response.json().await.expect("json");
    (total, page.len())
}

#[tokio::test]
async fn bad_create_input_is_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let product = app.create_product("bad-input").await;
    let customer = app.create_customer("bad@example.com").await;
    let valid = json!({ "productId": product["id"], "customerId": customer["id"] });
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("maxActivations", json!(-1)), "invalid_max_activations"),
        (with("maxActivations", json!(0)), "invalid_max_activations"),
        (
            with("maxActivations", json!(10_000_000_000_i64)),
            "invalid_max_activations",
        ),
        (with("maxActivations", json!("5")), "invalid_field"),
        (with("maxActivations", json!(1.5)), "invalid_field"),
        (with("expiresAt", json!("next tuesday")), "invalid_date"),
        (with("expiresAt", json!("2027-13-45")), "invalid_date"),
        (with("expiresAt", json!(1_700_000_000)), "invalid_field"),
        (
            with("startsAt", json!("2030-01-01")).merge_with("expiresAt", json!("2029-01-01")),
            "invalid_date_range",
        ),
        (with("status", json!("expired")), "invalid_status"),
        (with("status", json!("paused")), "invalid_status"),
        (
            with("licenseType", json!("forever")),
            "invalid_license_type",
        ),
        (with("features", json!(["api"])), "invalid_features"),
        (with("metadata", json!("x")), "invalid_metadata"),
        (with("productId", json!("12345")), "invalid_uuid"),
        (with("customerId", json!("")), "invalid_uuid"),
        (
            with("productId", json!("6f1b2c4e-0000-4000-8000-000000000000")),
            "unknown_product",
        ),
        (
            with("customerId", json!("6f1b2c4e-0000-4000-8000-000000000000")),
            "unknown_customer",
        ),
        (
            with("licenseKey", json!("ABCDE-ABCDE-ABCDE-ABCDE-ABCDE")),
            "unknown_field",
        ),
        (with("notes", json!("n".repeat(10_001))), "value_too_long"),
        (json!({ "productId": product["id"] }), "missing_field"),
        (json!([]), "invalid_field"),
    ];
    for (body, code) in cases {
        let response = app.call_with(Method::POST, "/api/licenses", &body).await;
        assert_error(response, 400, code).await;
    }
    for raw in ["{\"productId\":", "not json", "", "{\"productId\": x}"] {
        let response = app
            .admin(Method::POST, "/api/licenses")
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("sent");
        assert_error(response, 400, "malformed_json").await;
    }
    let huge = json!({ "productId": product["id"], "customerId": customer["id"],
                       "metadata": { "blob": "x".repeat(100_000) } });
    let response = app.call_with(Method::POST, "/api/licenses", &huge).await;
    assert_error(response, 413, "payload_too_large").await;

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM licenses")
        .fetch_one(&app.db)
        .await
        .expect("counted");
    assert_eq!(stored, 0, "no refused request left a license behind");
}

#[tokio::test]
async fn bad_update_input_is_refused_and_the_license_is_unchanged() {
    let app = TestApp::spawn().await;
    let license = app
        .create_license(json!({ "expiresAt": "2099-01-01T00:00:00Z" }))
        .await;
    let key = license["licenseKey"].as_str().expect("key");
    let path = format!("/api/licenses/{key}");
    let cases = [
        (json!({}), "empty_update"),
        (json!({ "status": "expired" }), "invalid_status"),
        (json!({ "status": 3 }), "invalid_field"),
        (json!({ "maxActivations": -5 }), "invalid_max_activations"),
        (json!({ "expiresAt": "soon" }), "invalid_date"),
        (json!({ "startsAt": "2100-01-01" }), "invalid_date_range"),
        (json!({ "features": "all" }), "invalid_features"),
        (json!({ "customerId": "x" }), "unknown_field"),
        (json!({ "statuss": "revoked" }), "unknown_field"),
    ];
    for (body, code) in cases {
        let response = app.call_with(Method::PUT, &path, &body).await;
        assert_error(response, 400, code).await;
    }
    let after: Value = app.get_json(&path).await;
    assert_eq!(after, license);
}

#[tokio::test]
async fn keys_of_the_wrong_shape_are_400_and_unknown_keys_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/licenses/short",
        "/api/licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDU",
        "/api/licenses/1BAD-ABCDE-ABCDE-ABCDE-ABCDE-ABCDE",
        "/api/licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDE-ABCDE-ABCDE",
    ] {
        let response = app.call(Method::GET, path).await;
        assert_error(response, 400, "invalid_license_key").await;
    }
    let response = app
        .call(Method::GET, "/api/licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDE")
        .await;
    assert_error(response, 404, "license_not_found").await;
    let response = app
        .call_with(
            Method::PUT,
            "/api/licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDE",
            &json!({ "status": "revoked" }),
        )
        .await;
    assert_error(response, 404, "license_not_found").await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = TestApp::spawn().await;
    let response = app.call(Method::GET, "/api/nothing").await;
    assert_error(response, 404, "not_found").await;
    let response = app.call(Method::PATCH, "/api/licenses").await;
    assert_error(response, 405, "method_not_allowed").await;
}

/// `json!` values with one more field set.
trait MergeWith {
    fn merge_with(self, field: &str, value: Value) -> Value;
}

impl MergeWith for Value {
    fn merge_with(mut self, field: &str, value: Value) -> Value {
        self[field] = value;
        self
    }
}
