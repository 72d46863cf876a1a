//! Admin authentication: no token, a wrong token, read-only tokens, revoked tokens.

use integration_tests::app::{TestApp, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn admin_routes_need_a_valid_token() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::GET, "/api/licenses"),
        (Method::POST, "/api/licenses"),
        (Method::GET, "/api/products"),
        (
            Method::DELETE,
            "/api/customers/6f1b2c4e-0000-4000-8000-000000000000",
        ),
        (
            Method::GET,
            "/api/licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDE/activations",
        ),
        (Method::GET, "/api/tokens"),
    ] {
        let response = app
            .anonymous(method.clone(), path)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_error(response, 401, "missing_token").await;

        let response = app
            .anonymous(method.clone(), path)
            .bearer_auth("wrong-token")
            .send()
            .await
            .expect("sent");
        assert_error(response, 401, "invalid_token").await;

        // Basic auth (Craft's way) takes the token as the password.
        let response = app
            .anonymous(method.clone(), path)
            .basic_auth("admin", Some("wrong-token"))
            .send()
            .await
            .expect("sent");
        assert_error(response, 401, "invalid_token").await;

        let response = app
            .anonymous(method, path)
            .header("Authorization", "Digest something")
            .send()
            .await
            .expect("sent");
        assert_error(response, 401, "missing_token").await;
    }
}

#[tokio::test]
async fn the_token_may_come_as_bearer_kong_header_or_basic_password() {
    let app = TestApp::spawn().await;
    let token = integration_tests::app::ADMIN_TOKEN;
    for request in [
        app.anonymous(Method::GET, "/api/products")
            .bearer_auth(token),
        app.anonymous(Method::GET, "/api/products")
            .header("Kong-Admin-Token", token),
        app.anonymous(Method::GET, "/api/products")
            .basic_auth("anyone", Some(token)),
    ] {
        assert_eq!(request.send().await.expect("sent").status(), 200);
    }
}

#[tokio::test]
async fn public_and_status_routes_need_no_token() {
    let app = TestApp::spawn().await;
    let response = app
        .anonymous(Method::POST, "/api/licenses/verify")
        .json(&json!({ "licenseKey": "ABCDE-ABCDE-ABCDE-ABCDE-ABCDE" }))
        .send()
        .await
        .expect("sent");
    assert_error(response, 404, "license_not_found").await;
    let response = app
        .anonymous(Method::GET, "/status/ready")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn read_only_tokens_read_but_never_write() {
    let app = TestApp::spawn().await;
    let response = app
        .call_with(
            Method::POST,
            "/api/tokens",
            &json!({ "name": "dashboard", "readOnly": true }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    let token = created["token"].as_str().expect("a secret").to_owned();
    assert!(token.starts_with("lsat_"));
    assert_eq!(created["readOnly"], true);

    let response = app
        .anonymous(Method::GET, "/api/licenses")
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    for (method, path, body) in [
        (
            Method::POST,
            "/api/products",
            json!({ "code": "x", "name": "x" }),
        ),
        (
            Method::PUT,
            "/api/licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDE",
            json!({ "status": "revoked" }),
        ),
        (
            Method::DELETE,
            "/api/licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDE",
            json!({}),
        ),
        (Method::POST, "/api/tokens", json!({ "name": "escalate" })),
    ] {
        let response = app
            .anonymous(method, path)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_error(response, 403, "read_only_token").await;
    }
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(&app.db)
        .await
        .expect("counted");
    assert_eq!(products, 0);
}

#[tokio::test]
async fn tokens_are_stored_hashed_listed_without_secrets_and_revocable() {
    let app = TestApp::spawn().await;
    let created: Value = app
        .call_with(Method::POST, "/api/tokens", &json!({ "name": "ci" }))
        .await
        .json()
        .await
        .expect("json");
    let token = created["token"].as_str().expect("secret").to_owned();
    let response = app
        .anonymous(Method::POST, "/api/products")
        .bearer_auth(&token)
        .json(&json!({ "code": "by-ci", "name": "Made by CI" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201, "a read-write token may write");

    let listed = app
        .call(Method::GET, "/api/tokens")
        .await
        .text()
        .await
        .expect("text");
    assert!(
        listed.contains("\"ci\"") && !listed.contains(&token),
        "{listed}"
    );
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM admin_tokens")
        .fetch_all(&app.db)
        .await
        .expect("read");
    assert!(
        stored
            .iter()
            .all(|hash| hash.len() == 32 && hash != token.as_bytes())
    );

    let response = app
        .call_with(Method::POST, "/api/tokens", &json!({ "name": "ci" }))
        .await;
    assert_error(response, 409, "token_name_taken").await;

    let id = created["id"].as_str().expect("id");
    let response = app.call(Method::DELETE, &format!("/api/tokens/{id}")).await;
    assert_eq!(response.status(), 204);
    let response = app
        .anonymous(Method::GET, "/api/products")
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_error(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn the_cli_token_store_issues_working_tokens() {
    let app = TestApp::spawn().await;
    let created = control_plane::db::tokens::create(&app.db, "from-cli", true)
        .await
        .expect("created");
    let response = app
        .anonymous(Method::GET, "/api/customers")
        .bearer_auth(&created.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(
        control_plane::db::tokens::revoke_by_name(&app.db, "from-cli")
            .await
            .expect("revoked")
    );
}
