//! Kong's Licenses API (seed 000) on the control plane: every example of the seed replayed,
//! documents round-tripping between dialects, imports from trusted issuers, and the report.

use integration_tests::app::TestApp;
use integration_tests::pg;
use license_shared::document;
use license_shared::signing::{self, ClusterKey, Jwks};
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// The payload of seed 000's examples.
fn seed_payload(expiration: &str) -> serde_json::Map<String, Value> {
    json!({
        "admin_seats": "1",
        "customer": "Example Company, Inc",
        "dataplanes": "1",
        "license_creation_date": "2017-07-20",
        "license_expiration_date": expiration,
        "license_key": "00141000017ODj3AAG_a1V41000004wT0OEAU",
        "product_subscription": "Konnect Enterprise",
        "support_plan": "None"
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}

/// The seed's literal document (signed by Kong's key, which we do not trust).
const SEED_DOCUMENT: &str = r#"{"license":{"payload":{"admin_seats":"1","customer":"Example Company, Inc","dataplanes":"1","license_creation_date":"2017-07-20","license_expiration_date":"2017-07-20","license_key":"00141000017ODj3AAG_a1V41000004wT0OEAU","product_subscription":"Konnect Enterprise","support_plan":"None"},"signature":"6985968131533a967fcc721244a979948b1066967f1e9cd65dbd8eeabe060fc32d894a2945f5e4a03c1cd2198c74e058ac63d28b045c2f1fcec95877bd790e1b","version":"1"}}"#;

/// A control plane trusting one extra issuer, and that issuer's key.
async fn app_with_issuer() -> (TestApp, ClusterKey) {
    let issuer = ClusterKey::new(uuid::Uuid::new_v4(), signing::generate_key(), true, 1);
    let dir = std::env::temp_dir().join(format!("ls-issuer-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("issuer.pub.pem");
    let pem = signing::public_key_to_pem(&issuer.key.verifying_key()).expect("pem");
    std::fs::write(&path, pem).expect("written");
    let database_url = pg::fresh_database().await.expect("database");
    let app =
        TestApp::spawn_with(&database_url, |args| args.trusted_issuer_keys = vec![path]).await;
    (app, issuer)
}

/// A Kong admin request (with `Kong-Admin-Token`), sent when awaited.
fn kong(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> impl std::future::Future<Output = Response> + use<> {
    let mut request = app
        .anonymous(method, path)
        .header("Kong-Admin-Token", integration_tests::app::ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    async move { request.send().await.expect("sent") }
}

async fn json_of(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(actual, status, "{body}");
    body
}

/// Asserts Kong's error shape: `{"message", "name"}` with our code as the name.
async fn kong_error(response: Response, status: u16, name: &str) {
    let body = json_of(response, status).await;
    assert_eq!(body["name"], name, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body.get("status").is_none(),
        "Kong's shape, not ours: {body}"
    );
}

async fn jwks(app: &TestApp) -> Jwks {
    app.anonymous(Method::GET, "/.well-known/jwks.json")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("jwks")
}

/// Every attribute of a Kong license view, typed as the seed shows it.
fn assert_kong_view(view: &Value) {
    let object = view.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "id", "payload", "updated_at"],
        "{view}"
    );
    assert!(
        view["created_at"].is_i64() && view["updated_at"].is_i64(),
        "{view}"
    );
    assert!(uuid::Uuid::parse_str(view["id"].as_str().expect("id")).is_ok());
    assert!(
        view["payload"]
            .as_str()
            .is_some_and(|p| p.starts_with("{\"license\":{"))
    );
}

#[tokio::test]
async fn the_seed_examples_work_with_a_trusted_issuer() {
    let (app, issuer) = app_with_issuer().await;

    // List with no licenses: exactly the seed's empty answer.
    let empty = json_of(kong(&app, Method::GET, "/licenses", None).await, 200).await;
    assert_eq!(empty, json!({"data": [], "next": null}));

    // POST the seed's document as Kong signed it: we do not trust Kong's key.
    let refused = kong(
        &app,
        Method::POST,
        "/licenses",
        Some(json!({"payload": SEED_DOCUMENT})),
    );
    kong_error(refused.await, 400, "invalid_license_signature").await;

    // The same payload signed by a trusted issuer is added, and served back verbatim.
    let signed = document::sign(seed_payload("2017-07-20"), &issuer);
    let created = kong(
        &app,
        Method::POST,
        "/licenses/",
        Some(json!({"payload": signed})),
    );
    let created = json_of(created.await, 201).await;
    assert_kong_view(&created);
    assert_eq!(created["payload"], signed.as_str());
    let id = created["id"].as_str().expect("id").to_owned();

    // Get one; list.
    let shown = json_of(
        kong(&app, Method::GET, &format!("/licenses/{id}"), None).await,
        200,
    )
    .await;
    assert_eq!(shown, created);
    let listed = json_of(kong(&app, Method::GET, "/licenses", None).await, 200).await;
    assert_eq!(listed, json!({"data": [created], "next": null}));

    // The imported license is a license like any other: product, customer, expiry, limits.
    let native = app.get_json::<Value>("/api/licenses").await;
    let license = &native[0];
    assert_eq!(license["id"], id.as_str());
    assert_eq!(license["expiresAt"], "2017-07-20T23:59:59Z");
    assert_eq!(license["status"], "expired");
    assert_eq!(
        license["features"],
        json!({"admin_seats": 1, "dataplanes": 1})
    );
    assert_eq!(license["metadata"], json!({"support_plan": "None"}));
    let products: Value = app.get_json("/api/products").await;
    assert_eq!(products[0]["code"], "konnect-enterprise");
    assert_eq!(products[0]["name"], "Konnect Enterprise");

    // PUT with the id replaces; PUT with a new id creates with that id.
    let renewed = document::sign(seed_payload("2017-07-21"), &issuer);
    let put = kong(
        &app,
        Method::PUT,
        &format!("/licenses/{id}"),
        Some(json!({"payload": renewed})),
    );
    let put = json_of(put.await, 200).await;
    assert_eq!(
        (put["id"].as_str(), put["payload"].as_str()),
        (Some(id.as_str()), Some(renewed.as_str()))
    );
    assert_eq!(put["created_at"], created["created_at"]);
    let new_id = "e8201120-4ee3-43ca-9e92-3fed08b1a15d";
    let put_new = kong(
        &app,
        Method::PUT,
        &format!("/licenses/{new_id}"),
        Some(json!({"payload": signed})),
    );
    assert_eq!(json_of(put_new.await, 200).await["id"], new_id);

    // PATCH replaces an existing license; unknown ids are 404.
    let patched = kong(
        &app,
        Method::PATCH,
        &format!("/licenses/{new_id}"),
        Some(json!({"payload": renewed})),
    );
    assert_eq!(
        json_of(patched.await, 200).await["payload"],
        renewed.as_str()
    );
    let unknown = "30b4edb7-0847-4f65-af90-efbed8b0161f";
    let missing = kong(
        &app,
        Method::PATCH,
        &format!("/licenses/{unknown}"),
        Some(json!({"payload": renewed})),
    );
    let body = json_of(missing.await, 404).await;
    assert_eq!(body["message"], "Not found");

    // Delete: 204, then gone.
    let deleted = kong(&app, Method::DELETE, &format!("/licenses/{new_id}"), None).await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        kong(&app, Method::GET, &format!("/licenses/{new_id}"), None)
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn bad_requests_get_kong_errors() {
    let (app, issuer) = app_with_issuer().await;
    let signed = document::sign(seed_payload("2017-07-20"), &issuer);
    let id = json_of(
        kong(
            &app,
            Method::POST,
            "/licenses",
            Some(json!({"payload": signed})),
        )
        .await,
        201,
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let tampered = signed.replace("Example Company", "Evil Company");
    let mut bad_date = seed_payload("20/07/2017");
    bad_date.insert("customer".into(), json!("Other"));
    let bad_date = document::sign(bad_date, &issuer);
    // A body over --max-body-bytes (64 KiB by default).
    let oversize = "x".repeat(100 * 1024);
    let license = format!("/licenses/{id}");
    let cases: [(Method, &str, Option<Value>, u16, &str); 14] = [
        (
            Method::PUT,
            "/licenses/not-a-uuid",
            Some(json!({"payload": signed})),
            400,
            "invalid_uuid",
        ),
        (Method::GET, "/licenses/42", None, 400, "invalid_uuid"),
        // Not even UTF-8 once percent-decoded.
        (Method::GET, "/licenses/%FF", None, 400, "invalid_uuid"),
        (
            Method::POST,
            "/licenses",
            Some(json!({})),
            400,
            "missing_field",
        ),
        (
            Method::POST,
            "/licenses",
            Some(json!({"payload": "{not json"})),
            400,
            "invalid_license_document",
        ),
        (
            Method::POST,
            "/licenses",
            Some(json!({"payload": 5})),
            400,
            "invalid_license_document",
        ),
        (
            Method::PATCH,
            &license,
            Some(json!({"payload": tampered})),
            400,
            "invalid_license_signature",
        ),
        (
            Method::POST,
            "/licenses",
            Some(json!({"payload": bad_date})),
            400,
            "invalid_license_document",
        ),
        (Method::GET, "/licenses?size=0", None, 400, "invalid_query"),
        (
            Method::GET,
            "/licenses?offset=abc",
            None,
            400,
            "invalid_query",
        ),
        // The collection is not replaced as a whole; PATCH still wants a UUID.
        (
            Method::PUT,
            "/licenses",
            Some(json!({"payload": signed})),
            405,
            "method_not_allowed",
        ),
        (
            Method::PATCH,
            "/licenses/not-a-uuid",
            Some(json!({"payload": signed})),
            400,
            "invalid_uuid",
        ),
        (
            Method::POST,
            "/licenses",
            Some(json!({"payload": oversize})),
            413,
            "payload_too_large",
        ),
        // Kong answers DELETE of an unknown id with 204, but still wants a UUID.
        (
            Method::DELETE,
            "/licenses/not-a-uuid",
            None,
            400,
            "invalid_uuid",
        ),
    ];
    for (method, path, body, status, name) in cases {
        kong_error(kong(&app, method, path, body).await, status, name).await;
    }
    let raw = app
        .anonymous(Method::POST, "/licenses")
        .header("Kong-Admin-Token", integration_tests::app::ADMIN_TOKEN)
        .body("{nope")
        .send()
        .await
        .expect("sent");
    kong_error(raw, 400, "malformed_json").await;
    let anonymous = app
        .anonymous(Method::GET, "/licenses")
        .send()
        .await
        .expect("sent");
    kong_error(anonymous, 401, "missing_token").await;
    let wrong = app
        .anonymous(Method::GET, "/licenses")
        .header("Kong-Admin-Token", "wrong")
        .send()
        .await
        .expect("sent");
    kong_error(wrong, 401, "invalid_token").await;
    let unknown = kong(
        &app,
        Method::DELETE,
        "/licenses/30b4edb7-0847-4f65-af90-efbed8b0161f",
        None,
    )
    .await;
    assert_eq!(unknown.status(), 204);
    // A read-only token reads Kong's licenses but writes none of them.
    let token = app
        .call_with(
            Method::POST,
            "/api/tokens",
            &json!({ "name": "dashboard", "readOnly": true }),
        )
        .await;
    let token = json_of(token, 201).await["token"]
        .as_str()
        .expect("a secret")
        .to_owned();
    let read = app
        .anonymous(Method::GET, &format!("/licenses/{id}"))
        .header("Kong-Admin-Token", &token)
        .send()
        .await
        .expect("sent");
    assert_eq!(read.status(), 200);
    for (method, path) in [
        (Method::POST, "/licenses".to_owned()),
        (Method::PUT, format!("/licenses/{id}")),
        (Method::PATCH, format!("/licenses/{id}")),
        (Method::DELETE, format!("/licenses/{id}")),
    ] {
        let refused = app
            .anonymous(method, &path)
            .header("Kong-Admin-Token", &token)
            .json(&json!({"payload": signed}))
            .send()
            .await
            .expect("sent");
        kong_error(refused, 403, "read_only_token").await;
    }
    // Nothing half-written: still the one license.
    let listed = json_of(kong(&app, Method::GET, "/licenses", None).await, 200).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn documents_round_trip_between_dialects() {
    let app = TestApp::spawn().await;
    let license = app
        .create_license(
            json!({"maxActivations": 3, "features": {"pro": true, "seats": 10},
                               "expiresAt": "2031-01-01T00:00:00Z", "edition": "gold",
                               "privateNotes": "never in a document"}),
        )
        .await;
    let id = license["id"].as_str().expect("id").to_owned();
    let key = license["licenseKey"].as_str().expect("key").to_owned();
    let view = json_of(
        kong(&app, Method::GET, &format!("/licenses/{id}"), None).await,
        200,
    )
    .await;
    assert_kong_view(&view);
    let text = view["payload"].as_str().expect("payload").to_owned();
    assert!(
        !text.contains("never in a document"),
        "private notes stay behind"
    );
    let verified = document::verify_with_jwks(&text, &jwks(&app).await).expect("verifies offline");
    let payload = verified.payload;
    assert_eq!(payload["license_key"], key.as_str());
    assert_eq!(payload["license_id"], id.as_str());
    assert_eq!(payload["features"], json!({"pro": true, "seats": 10}));
    assert_eq!(payload["max_activations"], "3");
    assert_eq!(payload["license_expiration_date"], "2031-01-01");
    assert_eq!(payload["edition"], "gold");
    // Deterministic: asked again, the same bytes.
    let again = json_of(
        kong(&app, Method::GET, &format!("/licenses/{id}"), None).await,
        200,
    )
    .await;
    assert_eq!(again["payload"], text.as_str());

    // Deleted through Kong, posted back: the same license facts, the same key.
    assert_eq!(
        kong(&app, Method::DELETE, &format!("/licenses/{id}"), None)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.call(Method::GET, &format!("/api/licenses/{key}"))
            .await
            .status(),
        404
    );
    let posted = kong(
        &app,
        Method::POST,
        "/licenses",
        Some(json!({"payload": text})),
    );
    let posted = json_of(posted.await, 201).await;
    let back: Value = app.get_json(&format!("/api/licenses/{key}")).await;
    assert_eq!(back["id"], posted["id"]);
    for field in [
        "productId",
        "customerId",
        "maxActivations",
        "features",
        "expiresAt",
        "edition",
        "licenseType",
        "status",
    ] {
        assert_eq!(back[field], license[field], "{field}");
    }
    // Documents signed by the cluster are re-signed from the facts, not stored.
    let reposted = document::verify_with_jwks(
        posted["payload"].as_str().expect("payload"),
        &jwks(&app).await,
    )
    .expect("verifies");
    assert_eq!(reposted.payload["license_key"], key.as_str());
    assert_eq!(reposted.payload["features"], payload["features"]);

    // Taken key: a second POST of the same document conflicts.
    let conflict = kong(
        &app,
        Method::POST,
        "/licenses",
        Some(json!({"payload": text})),
    )
    .await;
    kong_error(conflict, 409, "license_key_taken").await;
}

#[tokio::test]
async fn listings_page_with_size_and_offset() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.create_license(json!({})).await;
    }
    let first = json_of(kong(&app, Method::GET, "/licenses?size=2", None).await, 200).await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(2));
    let next = first["next"].as_str().expect("a next page").to_owned();
    assert!(next.starts_with("/licenses?offset="), "{next}");
    let second = json_of(kong(&app, Method::GET, &next, None).await, 200).await;
    assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["next"], Value::Null);
    assert_ne!(first["data"][0]["id"], second["data"][0]["id"]);
}

#[tokio::test]
async fn the_report_is_made_of_real_figures() {
    let app = TestApp::spawn().await;
    let report = json_of(kong(&app, Method::GET, "/license/report", None).await, 200).await;
    assert_eq!(report["license_key"], "UNLICENSED");
    let bucket = chrono::Utc::now().format("%Y-%m").to_string();
    assert_eq!(
        report["counters"],
        json!([{"bucket": bucket, "request_count": 0}])
    );
    let db_version = report["db_version"].as_str().expect("db_version");
    assert!(db_version.starts_with("postgres 1"), "{db_version}");
    assert!(
        report["system_info"]["cores"]
            .as_u64()
            .is_some_and(|c| c >= 1)
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert_ne!(
        report["system_info"]["hostname"],
        hostname.trim(),
        "hashed, not raw"
    );
    assert!(
        report["system_info"]["uname"]
            .as_str()
            .is_some_and(|u| u.starts_with("Linux"))
    );
    assert_eq!(report["workspaces_count"], 1);

    let license = app.create_license(json!({})).await;
    let key = license["licenseKey"].as_str().expect("key");
    let report = json_of(kong(&app, Method::GET, "/license/report", None).await, 200).await;
    let digest = report["license_key"].as_str().expect("license_key");
    assert_ne!(digest, "UNLICENSED");
    assert!(
        !digest.contains(key) && !digest.contains(&key[..5]),
        "never the raw key"
    );
    assert_eq!(report["licenses_count"], 1);
    assert_eq!(report["services_count"], 1);

    // Telemetry batches count once, however often they are resent.
    let node = uuid::Uuid::new_v4();
    let counts = vec![(bucket.clone(), 7)];
    for _ in 0..3 {
        control_plane::db::usage::record_batch(&app.db, node, 1, &counts, &[])
            .await
            .expect("recorded");
    }
    control_plane::db::usage::record_batch(&app.db, node, 2, &counts, &[])
        .await
        .expect("recorded");
    let report = json_of(kong(&app, Method::GET, "/license/report", None).await, 200).await;
    assert_eq!(
        report["counters"],
        json!([{"bucket": bucket, "request_count": 14}])
    );

    // Batches recorded more than the retention ago are forgotten; their counts stay, and a
    // recent batch resent is still recognised.
    sqlx::query(
        "UPDATE usage_batches SET received_at = now() - interval '31 days' \
         WHERE node_id = $1 AND sequence = 1",
    )
    .bind(node)
    .execute(&app.db)
    .await
    .expect("aged");
    let cutoff = chrono::Utc::now() - control_plane::db::usage::BATCH_RETENTION;
    let pruned = control_plane::db::usage::prune_batches(&app.db, cutoff)
        .await
        .expect("pruned");
    assert_eq!(pruned, 1, "only the aged batch");
    let resent = control_plane::db::usage::record_batch(&app.db, node, 2, &counts, &[])
        .await
        .expect("recorded");
    assert!(!resent, "the recent batch is still known");
    let report = json_of(kong(&app, Method::GET, "/license/report", None).await, 200).await;
    assert_eq!(
        report["counters"],
        json!([{"bucket": bucket, "request_count": 14}])
    );
}

#[tokio::test]
async fn payloads_come_as_json_or_as_a_form_field() {
    let (app, issuer) = app_with_issuer().await;
    let signed = document::sign(seed_payload("2030-01-01"), &issuer);
    let send = |request: reqwest::RequestBuilder| async move {
        request
            .header("Kong-Admin-Token", integration_tests::app::ADMIN_TOKEN)
            .send()
            .await
            .expect("sent")
    };
    // `curl --data-urlencode payload@license.json`
    let form = send(
        app.anonymous(
            Method::PUT,
            "/licenses/e8201120-4ee3-43ca-9e92-3fed08b1a15d",
        )
        .form(&[("payload", signed.as_str())]),
    )
    .await;
    assert_eq!(json_of(form, 200).await["payload"], signed.as_str());
    // `curl -d '{"payload": …}'` (JSON labelled as a form)
    let labelled = send(
        app.anonymous(Method::POST, "/licenses")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(json!({"payload": signed}).to_string()),
    )
    .await;
    assert_eq!(json_of(labelled, 201).await["payload"], signed.as_str());
    let no_field = send(
        app.anonymous(Method::POST, "/licenses")
            .form(&[("other", "x")]),
    )
    .await;
    kong_error(no_field, 400, "missing_field").await;
}

#[tokio::test]
async fn a_native_change_replaces_an_imported_document_with_ours() {
    let (app, issuer) = app_with_issuer().await;
    let imported = document::sign(seed_payload("2030-01-01"), &issuer);
    let created = kong(
        &app,
        Method::POST,
        "/licenses",
        Some(json!({"payload": imported})),
    );
    let created = json_of(created.await, 201).await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["payload"], imported.as_str());
    let jwks = jwks(&app).await;
    assert!(
        document::verify_with_jwks(&imported, &jwks).is_err(),
        "the issuer's document is not signed by the cluster"
    );

    // Notes are in no document: changing them keeps the issuer's.
    let native: Value = app.get_json("/api/licenses").await;
    let key = native[0]["licenseKey"].as_str().expect("key").to_owned();
    let noted = app
        .call_with(
            Method::PUT,
            &format!("/api/licenses/{key}"),
            &json!({"notes": "renewal call booked", "privateNotes": "discount 10%"}),
        )
        .await;
    assert_eq!(noted.status(), 200);
    let shown = json_of(
        kong(&app, Method::GET, &format!("/licenses/{id}"), None).await,
        200,
    )
    .await;
    assert_eq!(shown["payload"], imported.as_str());

    // Revoked through the native API.
    let revoked = app
        .call_with(
            Method::PUT,
            &format!("/api/licenses/{key}"),
            &json!({"status": "revoked"}),
        )
        .await;
    assert_eq!(json_of(revoked, 200).await["status"], "revoked");

    // Kong now serves the cluster's document with the new facts, not the issuer's stale one.
    let shown = json_of(
        kong(&app, Method::GET, &format!("/licenses/{id}"), None).await,
        200,
    )
    .await;
    let text = shown["payload"].as_str().expect("payload");
    assert_ne!(text, imported.as_str());
    let verified = document::verify_with_jwks(text, &jwks).expect("signed by the cluster");
    assert_eq!(verified.payload["status"], "revoked");
    assert_eq!(verified.payload["license_id"], id.as_str());
    assert_eq!(verified.payload["license_key"], key.as_str());
    assert_eq!(verified.payload["license_expiration_date"], "2030-01-01");
    assert_eq!(verified.payload["customer"], "Example Company, Inc");
    let listed = json_of(kong(&app, Method::GET, "/licenses", None).await, 200).await;
    assert_eq!(listed["data"][0]["payload"], text);

    // A new Kong import is the issuer's word again, served verbatim.
    let reimported = kong(
        &app,
        Method::PUT,
        &format!("/licenses/{id}"),
        Some(json!({"payload": imported})),
    );
    assert_eq!(
        json_of(reimported.await, 200).await["payload"],
        imported.as_str()
    );
}

/// `curl -u pixelandtonic:<token>` on Craft's API, decoded as JSON with its status checked.
async fn craft_json(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app
        .anonymous(method, path)
        .basic_auth("pixelandtonic", Some(integration_tests::app::ADMIN_TOKEN));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn craft_and_kong_see_the_same_licenses() {
    let (app, issuer) = app_with_issuer().await;
    app.create_product("commerce").await;

    // Created through Craft, shown by Kong as a document the cluster signed.
    let (status, created) = craft_json(
        &app,
        Method::POST,
        "/v1/plugin-licenses",
        Some(
            json!({"plugin": "commerce", "edition": "pro", "email": "brandon@pixelandtonic.com",
                    "expirable": true, "expiresOn": "2040-02-29"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let craft = &created["license"];
    let uid = craft["uid"].as_str().expect("uid");
    let view = json_of(
        kong(&app, Method::GET, &format!("/licenses/{uid}"), None).await,
        200,
    )
    .await;
    assert_kong_view(&view);
    let verified = document::verify_with_jwks(
        view["payload"].as_str().expect("payload"),
        &jwks(&app).await,
    )
    .expect("signed by the cluster");
    let payload = verified.payload;
    assert_eq!(payload["license_key"], craft["key"]);
    assert_eq!(payload["product"], "commerce");
    assert_eq!(payload["customer_email"], "brandon@pixelandtonic.com");
    assert_eq!(payload["edition"], "pro");
    assert_eq!(payload["license_expiration_date"], "2040-02-29");

    // Imported through Kong, shown by Craft.
    let imported = document::sign(seed_payload("2030-01-01"), &issuer);
    let posted = kong(
        &app,
        Method::POST,
        "/licenses",
        Some(json!({"payload": imported})),
    );
    let posted = json_of(posted.await, 201).await;
    // Kong's key is not in our format: the license got one of ours, which Craft addresses.
    let native: Value = app.get_json("/api/licenses").await;
    let key = native
        .as_array()
        .and_then(|all| all.iter().find(|l| l["id"] == posted["id"]))
        .and_then(|l| l["licenseKey"].as_str())
        .expect("the imported license")
        .to_owned();
    let (status, shown) = craft_json(
        &app,
        Method::GET,
        &format!("/v1/plugin-licenses/{key}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    let license = &shown["license"];
    assert_eq!(license["key"], key);
    assert_eq!(license["uid"], posted["id"]);
    assert_eq!(license["plugin"], "konnect-enterprise");
    assert_eq!(license["expirable"], true);
    assert_eq!(license["expiresOn"], "2030-01-01T23:59:59+00:00");
    assert!(license["pluginId"].is_i64(), "{license}");
    let (_, listed) = craft_json(&app, Method::GET, "/v1/plugin-licenses", None).await;
    assert_eq!(listed["total"], 2);
}

/// How many products have this code and customers this email: what an import left behind.
async fn owners_named(app: &TestApp, code: &str, email: &str) -> (i64, i64) {
    let products: i64 = sqlx::query_scalar("SELECT count(*) FROM products WHERE code = $1")
        .bind(code)
        .fetch_one(&app.db)
        .await
        .expect("products counted");
    let customers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers WHERE lower(email) = lower($1)")
            .bind(email)
            .fetch_one(&app.db)
            .await
            .expect("customers counted");
    (products, customers)
}

#[tokio::test]
async fn a_refused_import_leaves_no_product_or_customer_behind() {
    let (app, issuer) = app_with_issuer().await;
    let taken = app.create_license(json!({})).await;
    let taken_key = taken["licenseKey"].as_str().expect("a key").to_owned();
    let fresh = |changes: Value| {
        let mut payload = seed_payload("2099-12-31");
        payload.insert("product_subscription".into(), json!("Fresh Product"));
        payload.insert("customer".into(), json!("Fresh Customer"));
        payload.extend(changes.as_object().cloned().unwrap_or_default());
        json!({"payload": document::sign(payload, &issuer)})
    };
    let (code, email) = ("fresh-product", "fresh-customer@customers.invalid");

    // Refused after the product and customer are read from the document: a bad status, and
    // (by the database, in the license's own transaction) a key another license has.
    for (body, status, name) in [
        (
            fresh(json!({"status": "bogus"})),
            400,
            "invalid_license_document",
        ),
        (
            fresh(json!({"license_key": taken_key})),
            409,
            "license_key_taken",
        ),
    ] {
        kong_error(
            kong(&app, Method::POST, "/licenses", Some(body.clone())).await,
            status,
            name,
        )
        .await;
        let put = format!("/licenses/{}", uuid::Uuid::new_v4());
        kong_error(
            kong(&app, Method::PUT, &put, Some(body)).await,
            status,
            name,
        )
        .await;
        assert_eq!(owners_named(&app, code, email).await, (0, 0), "{name}");
    }

    // The same document without the fault creates both, once.
    json_of(
        kong(&app, Method::POST, "/licenses", Some(fresh(json!({})))).await,
        201,
    )
    .await;
    assert_eq!(owners_named(&app, code, email).await, (1, 1));
}

#[tokio::test]
async fn concurrent_imports_naming_a_new_product_create_it_once() {
    let (app, issuer) = app_with_issuer().await;
    const IMPORTS: usize = 8;
    let requests: Vec<_> = (0..IMPORTS)
        .map(|_| {
            let mut payload = seed_payload("2099-12-31");
            payload.insert("product_subscription".into(), json!("Brand New"));
            payload.insert("customer".into(), json!("Brand New Customer"));
            kong(
                &app,
                Method::POST,
                "/licenses",
                Some(json!({"payload": document::sign(payload, &issuer)})),
            )
        })
        .collect();
    let handles: Vec<_> = requests.into_iter().map(tokio::spawn).collect();
    for handle in handles {
        json_of(handle.await.expect("request task"), 201).await;
    }
    assert_eq!(
        owners_named(&app, "brand-new", "brand-new-customer@customers.invalid").await,
        (1, 1)
    );
    let owners: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT (product_id, customer_id)) FROM licenses")
            .fetch_one(&app.db)
            .await
            .expect("counted");
    assert_eq!(
        owners, 1,
        "every license names the one product and customer"
    );
}
