//! LicenseSpring's License API on a data plane: signed answers, the activation limit through
//! the authority, and every reachable error code, over a real cluster.

use std::time::Duration;

use integration_tests::cluster::{ControlPlane, DataPlaneProcess, TestCluster};
use integration_tests::licensespring::LsClient;
use integration_tests::process::wait_for;
use reqwest::Method;
use serde_json::{Value, json};

/// A cluster with one data plane, a key-based product `desk-…` and an API credential for it.
struct Fixture {
    cluster: TestCluster,
    cp: ControlPlane,
    dp: DataPlaneProcess,
    product: String,
    customer_id: Value,
    client: LsClient,
}

impl Fixture {
    async fn new() -> Self {
        let mut cluster = TestCluster::new().await.expect("cluster");
        let cp = cluster.start_control_plane().await.expect("control plane");
        let dp = cluster.start_data_plane(&cp).await.expect("data plane");
        let product = format!("desk-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let created = post(
            &cluster,
            &cp,
            "/api/products",
            json!({"code": product, "name": "Desk App"}),
        )
        .await;
        let customer = post(
            &cluster,
            &cp,
            "/api/customers",
            json!({"email": format!("ada-{product}@example.com"), "firstName": "Ada",
                   "lastName": "Lovelace", "companyName": "Engines Ltd"}),
        )
        .await;
        assert!(created["id"].is_string());
        let credential = post(
            &cluster,
            &cp,
            "/api/credentials",
            json!({"name": format!("app-{product}"), "products": [product]}),
        )
        .await;
        let client = LsClient {
            client: cluster.client.clone(),
            base_url: dp.public_url.clone(),
            api_key: credential["apiKey"].as_str().expect("apiKey").to_owned(),
            shared_key: credential["sharedKey"]
                .as_str()
                .expect("sharedKey")
                .to_owned(),
        };
        let fixture = Fixture {
            customer_id: customer["id"].clone(),
            cluster,
            cp,
            dp,
            product,
            client,
        };
        fixture.wait_for_credential(&fixture.client).await;
        fixture
    }

    /// Waits until the data plane knows the credential (answers anything but invalid_api_key).
    async fn wait_for_credential(&self, client: &LsClient) {
        let params = json!({"product": self.product, "hardware_id": "probe", "license_key": "x"});
        wait_for(
            "the credential on the data plane",
            Duration::from_secs(10),
            || async {
                let answer = client.call(Method::GET, "check_license", &params).await;
                answer.code() != "invalid_api_key"
            },
        )
        .await
        .expect("credential propagated");
    }

    async fn license(&self, fields: Value) -> String {
        let product_id = self.product_id().await;
        let mut body = json!({"productId": product_id, "customerId": self.customer_id});
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        let license = post(&self.cluster, &self.cp, "/api/licenses", body).await;
        let key = license["licenseKey"].as_str().expect("key").to_owned();
        wait_for(
            "the license on the data plane",
            Duration::from_secs(10),
            || async {
                self.cluster
                    .verify(&self.dp, &key)
                    .await
                    .is_ok_and(|(status, _)| status == 200)
            },
        )
        .await
        .expect("license propagated");
        key
    }

    async fn product_id(&self) -> Value {
        let products: Value = self
            .cluster
            .admin(&self.cp, Method::GET, "/api/products?perPage=100")
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        products
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["code"] == self.product.as_str())
            .map(|p| p["id"].clone())
            .expect("the product")
    }

    fn params(&self, key: &str, hardware_id: &str) -> Value {
        json!({"product": self.product, "license_key": key, "hardware_id": hardware_id,
               "hostname": format!("{hardware_id}.local"), "os_ver": "Linux 6.1", "is_vm": false,
               "app_ver": "1.2.3", "sdk_ver": "tests"})
    }
}

async fn post(cluster: &TestCluster, cp: &ControlPlane, path: &str, body: Value) -> Value {
    let response = cluster
        .admin(cp, Method::POST, path)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201, "POST {path} {body}");
    response.json().await.expect("json")
}

#[tokio::test]
async fn activate_check_and_deactivate_answer_signed_license_bodies() {
    let fx = Fixture::new().await;
    let key = fx
        .license(
            json!({"maxActivations": 1, "features": {"pro": true, "seats": 5, "beta": false},
                        "metadata": {"tier": "gold"}}),
        )
        .await;
    let jwks = fx.client.jwks().await;
    let cp_jwks: Value = fx
        .cluster
        .client
        .get(format!("{}/.well-known/jwks.json", fx.cp.admin_url))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        serde_json::to_value(&jwks).expect("json"),
        cp_jwks,
        "DP and CP publish the same keys"
    );

    let activated = fx
        .client
        .call(Method::POST, "activate_license", &fx.params(&key, "hw-1"))
        .await;
    assert_eq!(
        activated.status,
        200,
        "{}",
        String::from_utf8_lossy(&activated.body)
    );
    assert!(
        activated.signature_verifies(&jwks),
        "LicenseSignature verifies"
    );
    let body = activated.json();
    assert_eq!(body["license_key"], key.as_str());
    assert_eq!(body["times_activated"], 1);
    assert_eq!(body["max_activations"], 1);
    assert_eq!(body["allow_unlimited_activations"], false);
    assert_eq!(body["license_enabled"], true);
    assert_eq!(body["license_active"], true);
    assert_eq!(body["is_expired"], false);
    assert_eq!(body["license_type"], "perpetual");
    assert_eq!(body["product_details"]["short_code"], fx.product.as_str());
    assert_eq!(body["product_details"]["product_name"], "Desk App");
    assert_eq!(
        body["product_details"]["authorization_method"],
        "license-key"
    );
    assert_eq!(body["customer"]["first_name"], "Ada");
    assert_eq!(body["customer"]["company_name"], "Engines Ltd");
    let features: Vec<&str> = body["product_features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|feature| feature["code"].as_str())
        .collect();
    assert_eq!(features, ["pro", "seats"], "false flags are not features");
    assert_eq!(body["custom_fields"][0]["name"], "tier");
    // LicenseSpring's numeric ids are numbers (seed 002), not nulls.
    assert!(body["device_id"].is_u64(), "{body}");
    assert!(body["product_details"]["product_id"].is_u64(), "{body}");
    assert!(body["company"]["id"].is_i64(), "{body}");
    // `license_signature` signs LicenseSpring's v1 message,
    // lowercase(hardware_id#license_key#validity_period), with the cluster's key.
    let license_signature = body["license_signature"].as_str().expect("a signature");
    assert_eq!(license_signature.len(), 88);
    let message = format!(
        "hw-1#{key}#{}",
        body["validity_period"].as_str().unwrap_or_default()
    )
    .to_lowercase();
    assert!(
        jwks.verify(
            activated.kid.as_deref(),
            message.as_bytes(),
            license_signature
        )
        .is_ok(),
        "license_signature verifies against {message:?}"
    );
    let other_device = format!("hw-2#{key}#").to_lowercase();
    assert!(
        jwks.verify(None, other_device.as_bytes(), license_signature)
            .is_err(),
        "bound to the device"
    );

    // Tampering with one byte breaks the signature.
    let mut tampered = activated.clone();
    tampered.body[10] ^= 1;
    assert!(!tampered.signature_verifies(&jwks));

    // check_license answers, signed (that it needs no control plane is shown by
    // a_data_plane_restarted_without_its_control_plane_still_answers_signed).
    let checked = fx
        .client
        .call(Method::GET, "check_license", &fx.params(&key, "hw-1"))
        .await;
    assert_eq!(checked.status, 200);
    assert!(checked.signature_verifies(&jwks));
    assert_eq!(checked.json()["license_key"], key.as_str());
    assert_eq!(
        checked.json()["device_id"],
        body["device_id"],
        "the same device, the same id"
    );
    // Activating the same device again is idempotent.
    let again = fx
        .client
        .call(Method::POST, "activate_license", &fx.params(&key, "hw-1"))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["times_activated"], 1);

    // The limit holds: a second device is refused, and unknown to check_license.
    let second = fx
        .client
        .call(Method::POST, "activate_license", &fx.params(&key, "hw-2"))
        .await;
    assert_eq!(
        (second.status, second.code()),
        (400, "license_activated_max_times".into())
    );
    let unknown = fx
        .client
        .call(Method::GET, "check_license", &fx.params(&key, "hw-2"))
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (400, "device_not_found".into())
    );

    // The client facts were recorded on the activation.
    let activations: Value = fx
        .cluster
        .admin(
            &fx.cp,
            Method::GET,
            &format!("/api/licenses/{key}/activations"),
        )
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let facts = &activations[0]["clientFacts"];
    assert_eq!(facts["hostname"], "hw-1.local");
    assert_eq!(facts["os_ver"], "Linux 6.1");
    assert_eq!(facts["is_vm"], false);
    assert_eq!(activations[0]["deviceName"], "hw-1.local");

    // Deactivation frees the seat for another device.
    let deactivated = fx
        .client
        .call(Method::POST, "deactivate_license", &fx.params(&key, "hw-1"))
        .await;
    assert_eq!(
        deactivated.status,
        200,
        "{}",
        String::from_utf8_lossy(&deactivated.body)
    );
    let gone = fx
        .client
        .call(Method::GET, "check_license", &fx.params(&key, "hw-1"))
        .await;
    assert_eq!(gone.code(), "device_not_found");
    let twice = fx
        .client
        .call(Method::POST, "deactivate_license", &fx.params(&key, "hw-1"))
        .await;
    assert_eq!(
        (twice.status, twice.code()),
        (400, "device_not_found".into())
    );
    let now_second = fx
        .client
        .call(Method::POST, "activate_license", &fx.params(&key, "hw-2"))
        .await;
    assert_eq!(now_second.status, 200);

    // The shared key never appears in a log.
    for log in [fx.cp.process.log_text(), fx.dp.process.log_text()] {
        assert!(!log.contains(&fx.client.shared_key), "shared key in a log");
    }
}

#[tokio::test]
async fn errors_decided_by_the_control_plane_have_their_licensespring_code() {
    let fx = Fixture::new().await;
    let key = fx.license(json!({"maxActivations": 2})).await;
    let call = |method: Method, endpoint: &'static str, params: Value| {
        let client = fx.client.clone();
        async move { client.call(method, endpoint, &params).await }
    };
    let expect = |answer: integration_tests::licensespring::LsAnswer, code: &str| {
        assert_eq!(
            answer.status,
            400,
            "{code}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let body = answer.json();
        assert_eq!(body["code"], code);
        assert_eq!(body["status"], 400);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(3),
            "exactly status, code, message"
        );
    };

    // The error table of what a data plane answers alone is in tests/tests/data_plane; here
    // what only the control plane's authority, or a propagated change, decides.
    let first = call(Method::POST, "activate_license", fx.params(&key, "hw-a")).await;
    assert_eq!(first.status, 200);
    let second = call(Method::POST, "activate_license", fx.params(&key, "hw-b")).await;
    assert_eq!(second.status, 200);
    expect(
        call(Method::POST, "activate_license", fx.params(&key, "hw-c")).await,
        "license_activated_max_times",
    );
    expect(
        call(
            Method::POST,
            "deactivate_license",
            fx.params(&key, "hw-never"),
        )
        .await,
        "device_not_found",
    );
    for device in ["hw-a", "hw-b"] {
        let freed = call(Method::POST, "deactivate_license", fx.params(&key, device)).await;
        assert_eq!(freed.status, 200);
    }

    // A credential for another product may not touch this one.
    let other = format!("other-{}", fx.product);
    post(
        &fx.cluster,
        &fx.cp,
        "/api/products",
        json!({"code": other, "name": "Other"}),
    )
    .await;
    let foreign = post(
        &fx.cluster,
        &fx.cp,
        "/api/credentials",
        json!({"name": other, "products": [other]}),
    )
    .await;
    let foreign = LsClient {
        api_key: foreign["apiKey"].as_str().expect("apiKey").into(),
        shared_key: foreign["sharedKey"].as_str().expect("sharedKey").into(),
        ..fx.client.clone()
    };
    fx.wait_for_credential(&foreign).await;
    expect(
        foreign
            .call(Method::GET, "check_license", &fx.params(&key, "hw-1"))
            .await,
        "api_key_product_not_allowed",
    );
    // This product's key, asked for as the other product (which the credential may use).
    expect(
        foreign
            .call(
                Method::GET,
                "check_license",
                &json!({"product": other, "license_key": key, "hardware_id": "hw-1"}),
            )
            .await,
        "license_not_found",
    );
    expect(
        call(
            Method::POST,
            "deactivate_license",
            fx.params("AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "hw-1"),
        )
        .await,
        "license_not_found",
    );

    // A device holding a seat loses the license when it is revoked.
    let revoked = fx.license(json!({})).await;
    let held = call(
        Method::POST,
        "activate_license",
        fx.params(&revoked, "hw-1"),
    )
    .await;
    assert_eq!(held.status, 200);
    let response = fx
        .cluster
        .admin(&fx.cp, Method::PUT, &format!("/api/licenses/{revoked}"))
        .json(&json!({"status": "revoked"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    wait_for(
        "the revocation on the data plane",
        Duration::from_secs(10),
        || async {
            call(Method::GET, "check_license", fx.params(&revoked, "hw-1"))
                .await
                .code()
                == "license_not_enabled"
        },
    )
    .await
    .expect("revoked license refused");
    expect(
        call(Method::GET, "check_license", fx.params(&revoked, "hw-1")).await,
        "license_not_enabled",
    );
    expect(
        call(
            Method::POST,
            "activate_license",
            fx.params(&revoked, "hw-2"),
        )
        .await,
        "license_not_enabled",
    );
    let future = fx
        .license(json!({"startsAt": "2999-01-01T00:00:00Z"}))
        .await;
    expect(
        call(Method::POST, "activate_license", fx.params(&future, "hw-1")).await,
        "license_not_active",
    );
    let expired = fx
        .license(json!({"expiresAt": "2001-01-01T00:00:00Z"}))
        .await;
    expect(
        call(
            Method::POST,
            "activate_license",
            fx.params(&expired, "hw-1"),
        )
        .await,
        "license_expired",
    );

    // An expired license a device holds is still described, marked expired.
    let activated = call(Method::POST, "activate_license", fx.params(&key, "hw-1")).await;
    assert_eq!(activated.status, 200);
    let response = fx
        .cluster
        .admin(&fx.cp, Method::PUT, &format!("/api/licenses/{key}"))
        .json(&json!({"expiresAt": "2001-01-01T00:00:00Z"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    wait_for(
        "the expiry on the data plane",
        Duration::from_secs(10),
        || async {
            call(Method::GET, "check_license", fx.params(&key, "hw-1"))
                .await
                .json()["is_expired"]
                == true
        },
    )
    .await
    .expect("expired license described");

    // A deleted credential stops working.
    let credentials: Value = fx
        .cluster
        .admin(&fx.cp, Method::GET, "/api/credentials")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(
        credentials.to_string().find("sharedKey").is_none(),
        "listing never shows shared keys"
    );
    let id = credentials
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["apiKey"] == foreign.api_key.as_str())
        .map(|c| c["id"].as_str().expect("id").to_owned())
        .expect("listed");
    let deleted = fx
        .cluster
        .admin(&fx.cp, Method::DELETE, &format!("/api/credentials/{id}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), 204);
    wait_for(
        "the deletion on the data plane",
        Duration::from_secs(10),
        || async {
            foreign
                .call(Method::GET, "check_license", &fx.params(&key, "hw-1"))
                .await
                .code()
                == "invalid_api_key"
        },
    )
    .await
    .expect("deleted credential refused");
}

#[tokio::test]
async fn user_based_products_find_the_license_by_username() {
    let fx = Fixture::new().await;
    let product = format!("team-{}", fx.product);
    let created = post(
        &fx.cluster,
        &fx.cp,
        "/api/products",
        json!({"code": product, "name": "Team", "authorizationMethod": "user"}),
    )
    .await;
    let email = format!("grace-{}@example.com", fx.product);
    let customer = post(
        &fx.cluster,
        &fx.cp,
        "/api/customers",
        json!({"email": email, "firstName": "Grace"}),
    )
    .await;
    post(
        &fx.cluster,
        &fx.cp,
        "/api/licenses",
        json!({"productId": created["id"], "customerId": customer["id"], "maxActivations": 3,
               "expiresAt": "2031-01-01T00:00:00Z"}),
    )
    .await;
    let credential = post(
        &fx.cluster,
        &fx.cp,
        "/api/credentials",
        json!({"name": product, "products": [product]}),
    )
    .await;
    let client = LsClient {
        api_key: credential["apiKey"].as_str().expect("apiKey").into(),
        shared_key: credential["sharedKey"].as_str().expect("sharedKey").into(),
        ..fx.client.clone()
    };
    fx.wait_for_credential(&client).await;
    let params =
        json!({"product": product, "username": email.to_uppercase(), "hardware_id": "hw-u"});
    let mut activated = client.call(Method::POST, "activate_license", &params).await;
    for _ in 0..50 {
        if activated.code() != "license_not_found" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        activated = client.call(Method::POST, "activate_license", &params).await;
    }
    assert_eq!(
        activated.status,
        200,
        "{}",
        String::from_utf8_lossy(&activated.body)
    );
    let body = activated.json();
    assert_eq!(body["user"]["email"], email.as_str());
    assert_eq!(body["user"]["first_name"], "Grace");
    assert_eq!(body["product_details"]["authorization_method"], "user");
    assert!(body.get("license_key").is_none());
    assert!(body["user"]["id"].is_u64(), "{body}");
    // User-based licenses sign the username (the customer's email) in license_signature.
    let message = format!("hw-u#{email}#2031-01-01T00:00:00.000Z").to_lowercase();
    assert!(
        client
            .jwks()
            .await
            .verify(
                activated.kid.as_deref(),
                message.as_bytes(),
                body["license_signature"].as_str().expect("a signature"),
            )
            .is_ok(),
        "license_signature verifies against {message:?}"
    );
    let stranger = client
        .call(
            Method::GET,
            "check_license",
            &json!({"product": product, "username": "nobody@example.com", "hardware_id": "hw-u"}),
        )
        .await;
    assert_eq!(
        (stranger.status, stranger.code()),
        (400, "license_not_found".into())
    );
    let missing = client
        .call(
            Method::GET,
            "check_license",
            &json!({"product": product, "hardware_id": "hw-u"}),
        )
        .await;
    assert_eq!(missing.code(), "missing_parameters");
}

#[tokio::test]
async fn a_data_plane_restarted_without_its_control_plane_still_answers_signed() {
    let mut fx = Fixture::new().await;
    let key = fx.license(json!({"maxActivations": 3})).await;
    let activated = fx
        .client
        .call(Method::POST, "activate_license", &fx.params(&key, "hw-1"))
        .await;
    assert_eq!(activated.status, 200);
    let jwks = fx.client.jwks().await;
    // Wait for the disk cache to hold the activation, then lose the control plane.
    tokio::time::sleep(Duration::from_millis(500)).await;
    fx.cp.process.kill();
    fx.dp.process.kill();
    fx.cluster
        .restart_data_plane(&mut fx.dp)
        .await
        .expect("restarts from its cache");

    // Credentials and signing keys came back from the cache with the licenses.
    let checked = fx
        .client
        .call(Method::GET, "check_license", &fx.params(&key, "hw-1"))
        .await;
    assert_eq!(
        checked.status,
        200,
        "{}",
        String::from_utf8_lossy(&checked.body)
    );
    assert!(checked.signature_verifies(&jwks));
    assert_eq!(fx.client.jwks().await, jwks);
    // A new device needs the authority: a clear 503, never a guess.
    let new_device = fx
        .client
        .call(Method::POST, "activate_license", &fx.params(&key, "hw-2"))
        .await;
    assert_eq!(
        (new_device.status, new_device.code()),
        (503, "control_plane_unavailable".into())
    );
}

/// The Python of the virtualenv holding LicenseSpring's official SDK: `$LICENSESPRING_VENV`,
/// else `<target>/licensespring-venv`, whichever holds a Python that imports the SDK. The test
/// never installs anything itself (no network from inside `cargo test`): without a prepared
/// virtualenv it fails and says how to prepare one (`scripts/test` and `.ci/run` do).
fn sdk_python() -> std::path::PathBuf {
    let target_venv = integration_tests::process::binaries()
        .expect("binaries")
        .parent()
        .expect("target dir")
        .join("licensespring-venv");
    let candidates: Vec<std::path::PathBuf> = std::env::var_os("LICENSESPRING_VENV")
        .filter(|venv| !venv.is_empty())
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(std::iter::once(target_venv.clone()))
        .collect();
    let imports_the_sdk = |python: &std::path::Path| {
        std::process::Command::new(python)
            .args(["-c", "import licensespring, jsonschema"])
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if let Some(python) = candidates
        .iter()
        .map(|venv| venv.join("bin").join("python"))
        .find(|python| imports_the_sdk(python))
    {
        return python;
    }
    let requirements =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("licensespring-sdk/requirements.txt");
    panic!(
        "no virtualenv with LicenseSpring's SDK (tried {tried}). Prepare it before the tests, \
         either with `scripts/test` (which does this, then runs `cargo test --workspace`) or:\n\
         \n    python3 -m venv {venv}\
         \n    {venv}/bin/python -m pip install -r {requirements}\n\
         \nor point LICENSESPRING_VENV at a virtualenv made that way.",
        tried = candidates
            .iter()
            .map(|venv| venv.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        venv = target_venv.display(),
        requirements = requirements.display(),
    );
}

#[tokio::test]
async fn licensespring_sdk_works_against_a_data_plane() {
    let python = tokio::task::spawn_blocking(sdk_python)
        .await
        .expect("venv ready");
    let fx = Fixture::new().await;
    let key = fx
        .license(json!({"maxActivations": 1, "features": {"pro": true}}))
        .await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("licensespring-sdk/interop.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .env(
            "LS_API_DOMAIN",
            fx.dp.public_url.trim_start_matches("http://"),
        )
        .env("LS_API_KEY", &fx.client.api_key)
        .env("LS_SHARED_KEY", &fx.client.shared_key)
        .env("LS_PRODUCT", &fx.product)
        .env("LS_LICENSE_KEY", &key)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the SDK run failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
