//! `/api/credentials` (LicenseSpring API credentials) and the signing keys published at
//! `/.well-known/jwks.json`.

use integration_tests::app::{TestApp, assert_error};
use integration_tests::pg;
use license_shared::signing::{self, Jwks};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn credentials_show_their_shared_key_once_and_can_be_deleted() {
    let app = TestApp::spawn().await;
    app.create_product("desk").await;
    app.create_product("cloud").await;
    let response = app
        .call_with(
            Method::POST,
            "/api/credentials",
            &json!({"name": "desktop", "products": ["desk", "cloud", "desk"]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    assert_eq!(created["products"], json!(["desk", "cloud"]));
    assert!(created["apiKey"].as_str().is_some_and(|k| k.len() == 36));
    assert!(created["sharedKey"].as_str().is_some_and(|k| k.len() >= 43));

    let listed: Value = app.get_json("/api/credentials").await;
    assert_eq!(listed[0]["apiKey"], created["apiKey"]);
    assert!(
        listed[0].get("sharedKey").is_none(),
        "never listed: {listed}"
    );
    let shared_key = created["sharedKey"].as_str().expect("text");
    assert!(!listed.to_string().contains(shared_key));

    let path = format!("/api/credentials/{}", created["id"].as_str().expect("id"));
    assert_eq!(app.call(Method::DELETE, &path).await.status(), 204);
    assert_error(
        app.call(Method::DELETE, &path).await,
        404,
        "credential_not_found",
    )
    .await;
    let listed: Value = app.get_json("/api/credentials").await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn bad_credential_requests_are_refused_precisely() {
    let app = TestApp::spawn().await;
    app.create_product("desk").await;
    for (body, code) in [
        (json!({"name": "a", "products": []}), "invalid_products"),
        (
            json!({"name": "a", "products": ["nope"]}),
            "unknown_product",
        ),
        (json!({"name": "", "products": ["desk"]}), "invalid_field"),
        (json!({"products": ["desk"]}), "missing_field"),
        (json!({"name": "a", "products": "desk"}), "invalid_field"),
        (
            json!({"name": "a", "products": ["desk"], "sharedKey": "mine"}),
            "unknown_field",
        ),
    ] {
        let response = app.call_with(Method::POST, "/api/credentials", &body).await;
        assert_error(response, 400, code).await;
    }
    let body = json!({"name": "twice", "products": ["desk"]});
    assert_eq!(
        app.call_with(Method::POST, "/api/credentials", &body)
            .await
            .status(),
        201
    );
    let again = app.call_with(Method::POST, "/api/credentials", &body).await;
    assert_error(again, 409, "credential_name_taken").await;
    assert_error(
        app.call(Method::DELETE, "/api/credentials/42").await,
        400,
        "invalid_uuid",
    )
    .await;
    let anonymous = app
        .anonymous(Method::GET, "/api/credentials")
        .send()
        .await
        .expect("sent");
    assert_error(anonymous, 401, "missing_token").await;
    let listed: Value = app.get_json("/api/credentials").await;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "nothing half-written"
    );
}

#[tokio::test]
async fn the_signing_key_is_generated_once_or_taken_from_the_key_file() {
    let database_url = pg::fresh_database().await.expect("database");
    let jwks = |app: &TestApp| {
        let request = app.anonymous(Method::GET, "/.well-known/jwks.json");
        async move {
            request
                .send()
                .await
                .expect("sent")
                .json::<Jwks>()
                .await
                .expect("a JWKS")
        }
    };
    let first = TestApp::spawn_with(&database_url, |_| {}).await;
    let generated = jwks(&first).await;
    assert_eq!(generated.keys.len(), 1);
    assert_eq!(generated.keys[0].kty, "OKP");
    assert_eq!(generated.keys[0].crv, "Ed25519");
    // A second replica on the same database shares the key.
    let second = TestApp::spawn_with(&database_url, |_| {}).await;
    assert_eq!(jwks(&second).await, generated);

    // A configured key becomes the active one; the generated one stays published.
    let dir = tempfile_dir();
    let path = dir.join("signing-key.pem");
    let key = signing::generate_key();
    std::fs::write(&path, signing::key_to_pem(&key).expect("pem")).expect("written");
    let configured = TestApp::spawn_with(&database_url, |args| args.signing_key = Some(path)).await;
    let rotated = jwks(&configured).await;
    let kids: Vec<&str> = rotated.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(
        kids,
        [
            signing::key_id(&key.verifying_key()).as_str(),
            generated.keys[0].kid.as_str()
        ]
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ls-keys-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}
