//! Craft's plugin licenses API (seed 001) on the control plane, with HTTP basic auth.

use integration_tests::app::{ADMIN_TOKEN, TestApp, assert_error};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

/// `curl -u pixelandtonic:<token>`.
fn craft(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.anonymous(method, path)
        .basic_auth("pixelandtonic", Some(ADMIN_TOKEN))
}

/// The seed's license attributes, in its order.
const FIELDS: [&str; 21] = [
    "id",
    "pluginId",
    "editionId",
    "ownerId",
    "cmsLicenseId",
    "plugin",
    "edition",
    "expirable",
    "expired",
    "autoRenew",
    "email",
    "key",
    "notes",
    "lastVersion",
    "lastAllowedVersion",
    "lastActivityOn",
    "lastRenewedOn",
    "expiresOn",
    "dateCreated",
    "dateUpdated",
    "uid",
];

fn assert_craft_license(license: &Value) {
    let mut keys: Vec<&str> = license
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = FIELDS.to_vec();
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{license}");
}

#[tokio::test]
async fn the_seed_examples_work() {
    let app = TestApp::spawn().await;
    app.create_product("commerce").await;

    // The seed's create request, byte for byte.
    let response = craft(&app, Method::POST, "/v1/plugin-licenses")
        .body(
            r#"{
          "edition": "standard",
          "plugin": "commerce",
          "email": "brandon@pixelandtonic.com"
        }"#,
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    let license = &created["license"];
    assert_craft_license(license);
    assert_eq!(license["plugin"], "commerce");
    assert_eq!(license["edition"], "standard");
    assert_eq!(license["email"], "brandon@pixelandtonic.com");
    assert_eq!(
        (license["expirable"].as_bool(), license["expired"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(license["autoRenew"], false);
    assert_eq!(license["expiresOn"], Value::Null);
    assert_eq!(license["notes"], Value::Null);
    assert!(license["id"].is_i64() && license["pluginId"].is_i64());
    let key = license["key"].as_str().expect("key").to_owned();

    // Get by key.
    let shown: Value = craft(&app, Method::GET, &format!("/v1/plugin-licenses/{key}"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["license"], *license);

    // List.
    let listed: Value = craft(&app, Method::GET, "/v1/plugin-licenses")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["totalPages"], 1);
    assert_eq!(listed["licenses"][0], *license);

    // The customer was created from the email, and the license is a native license too.
    let native: Value = app.get_json(&format!("/api/licenses/{key}")).await;
    assert_eq!(native["edition"], "standard");
    let customers: Value = app.get_json("/api/customers").await;
    assert_eq!(customers[0]["email"], "brandon@pixelandtonic.com");
}

#[tokio::test]
async fn expirable_licenses_default_to_a_year_and_private_notes_stay_private() {
    let app = TestApp::spawn().await;
    app.create_product("commerce").await;
    let response = craft(&app, Method::POST, "/v1/plugin-licenses")
        .json(
            &json!({"plugin": "commerce", "edition": "pro", "email": "a@example.com",
                      "expirable": true, "notes": "hello", "privateNotes": "secret-note"}),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
    let text = response.text().await.expect("text");
    assert!(!text.contains("secret-note"));
    let license = &serde_json::from_str::<Value>(&text).expect("json")["license"];
    assert_eq!(license["expirable"], true);
    assert_eq!(license["notes"], "hello");
    let expires =
        chrono::DateTime::parse_from_rfc3339(license["expiresOn"].as_str().expect("date"))
            .expect("rfc3339");
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((364..=366).contains(&days), "{days} days");

    let dated = craft(&app, Method::POST, "/v1/plugin-licenses")
        .json(
            &json!({"plugin": "commerce", "edition": "pro", "email": "b@example.com",
                      "expirable": true, "expiresOn": "2040-02-29"}),
        )
        .send()
        .await
        .expect("sent");
    let dated: Value = dated.json().await.expect("json");
    assert_eq!(dated["license"]["expiresOn"], "2040-02-29T23:59:59+00:00");

    // Two pages of one.
    let page: Value = craft(&app, Method::GET, "/v1/plugin-licenses?perPage=1&page=2")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (page["total"].as_i64(), page["totalPages"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(page["licenses"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn bad_requests_are_refused_precisely() {
    let app = TestApp::spawn().await;
    app.create_product("commerce").await;
    for (body, code) in [
        (
            json!({"edition": "standard", "email": "a@example.com"}),
            "missing_field",
        ),
        (
            json!({"plugin": "nope", "edition": "standard", "email": "a@example.com"}),
            "unknown_product",
        ),
        (
            json!({"plugin": "commerce", "edition": "standard", "email": "not-an-email"}),
            "invalid_email",
        ),
        (
            json!({"plugin": "commerce", "edition": "", "email": "a@example.com"}),
            "invalid_field",
        ),
        (
            json!({"plugin": "commerce", "edition": "s", "email": "a@example.com", "expiresOn": "2040-01-01"}),
            "invalid_field",
        ),
        (
            json!({"plugin": "commerce", "edition": "s", "email": "a@example.com", "expirable": true, "expiresOn": "2001-01-01"}),
            "invalid_date",
        ),
        (
            json!({"plugin": "commerce", "edition": "s", "email": "a@example.com", "expirable": true, "expiresOn": "soon"}),
            "invalid_date",
        ),
        (
            json!({"plugin": "commerce", "edition": "s", "email": "a@example.com", "expirable": "yes"}),
            "invalid_field",
        ),
    ] {
        let response = craft(&app, Method::POST, "/v1/plugin-licenses")
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert_error(response, 400, code).await;
    }
    let missing = craft(
        &app,
        Method::GET,
        "/v1/plugin-licenses/ABCDE-ABCDE-ABCDE-ABCDE-ABCDE",
    )
    .send()
    .await
    .expect("sent");
    assert_error(missing, 404, "license_not_found").await;
    let malformed = craft(
        &app,
        Method::GET,
        "/v1/plugin-licenses/P8GQRVQO5MK9Q673U0IJZ2I3",
    )
    .send()
    .await
    .expect("sent");
    assert_error(malformed, 400, "invalid_license_key").await;
    let not_utf8 = craft(&app, Method::GET, "/v1/plugin-licenses/%FF")
        .send()
        .await
        .expect("sent");
    assert_error(not_utf8, 400, "invalid_license_key").await;
    let anonymous = app
        .anonymous(Method::GET, "/v1/plugin-licenses")
        .send()
        .await
        .expect("sent");
    assert_error(anonymous, 401, "missing_token").await;
    let wrong = app
        .anonymous(Method::GET, "/v1/plugin-licenses")
        .basic_auth(
            "pixelandtonic",
            Some("uurzawyghj3ebb7mp8r762h7dn8htstx8xsl7ou7"),
        )
        .send()
        .await
        .expect("sent");
    assert_error(wrong, 401, "invalid_token").await;
    let listed: Value = craft(&app, Method::GET, "/v1/plugin-licenses")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["total"], 0, "nothing half-written");
}

/// How many customers have this email (any case).
async fn customers_with_email(app: &TestApp, email: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM customers WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_one(&app.db)
        .await
        .expect("customers counted")
}

#[tokio::test]
async fn a_license_the_database_refuses_leaves_no_customer_behind() {
    let app = TestApp::spawn().await;
    app.create_product("commerce").await;
    // The database refuses the license after the customer was found or created: as it does
    // when the plugin is deleted between the handler's look-up and the insert, a foreign-key
    // violation (simulated here by a trigger, for licenses of edition "doomed").
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.edition = 'doomed' THEN \
             RAISE EXCEPTION 'plugin gone' USING ERRCODE = 'foreign_key_violation', \
               CONSTRAINT = 'licenses_product_id_fkey'; \
           END IF; \
           RETURN NEW; \
         END $$; \
         CREATE TRIGGER refuse_doomed BEFORE INSERT ON licenses \
           FOR EACH ROW EXECUTE FUNCTION refuse_doomed();",
    )
    .execute(&app.db)
    .await
    .expect("trigger installed");

    let email = "new-owner@example.com";
    let refused = craft(&app, Method::POST, "/v1/plugin-licenses")
        .json(&json!({"plugin": "commerce", "edition": "doomed", "email": email}))
        .send()
        .await
        .expect("sent");
    assert_error(refused, 400, "unknown_product").await;
    assert_eq!(customers_with_email(&app, email).await, 0);

    let created = craft(&app, Method::POST, "/v1/plugin-licenses")
        .json(&json!({"plugin": "commerce", "edition": "standard", "email": email}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
    assert_eq!(customers_with_email(&app, email).await, 1);
}

#[tokio::test]
async fn concurrent_licenses_for_a_new_email_create_one_customer() {
    let app = TestApp::spawn().await;
    app.create_product("commerce").await;
    let email = "Twice@Example.com";
    let requests: Vec<_> = (0..8)
        .map(|i| {
            // The same address in different cases is the same customer.
            let email = if i % 2 == 0 {
                email.to_owned()
            } else {
                email.to_lowercase()
            };
            craft(&app, Method::POST, "/v1/plugin-licenses")
                .json(&json!({"plugin": "commerce", "edition": "standard", "email": email}))
                .send()
        })
        .collect();
    let handles: Vec<_> = requests.into_iter().map(tokio::spawn).collect();
    for handle in handles {
        let response = handle.await.expect("request task").expect("sent");
        assert_eq!(response.status(), 201);
    }
    assert_eq!(customers_with_email(&app, email).await, 1);
}
