//! LicenseSpring's error codes on a data plane (seed 002): one test per reachable case, each
//! answered 400 (413 for an oversized body, 503 when the control plane is needed and away) in
//! exactly `{status, code, message}`.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use integration_tests::data_plane::{InProcessDataPlane, World};
use integration_tests::licensespring::{LsAnswer, LsClient, auth_headers};
use reqwest::Method;
use serde_json::{Value, json};

/// The parameters the SDK sends for `license` and `hardware_id`.
fn params(world: &World, license: &str, hardware_id: &str) -> Value {
    json!({"product": world.product.code, "license_key": license, "hardware_id": hardware_id,
           "hostname": format!("{hardware_id}.local"), "os_ver": "Linux 6.1", "is_vm": false,
           "app_ver": "1.2.3", "sdk_ver": "tests"})
}

fn without(mut params: Value, field: &str) -> Value {
    if let Some(object) = params.as_object_mut() {
        object.remove(field);
    }
    params
}

fn with(mut params: Value, field: &str, value: Value) -> Value {
    params[field] = value;
    params
}

fn now() -> String {
    httpdate::fmt_http_date(SystemTime::now())
}

/// An `Authorization` header of `client`'s api key with this algorithm and signature.
fn authorization(client: &LsClient, algorithm: &str, signature: &str) -> (String, String) {
    (
        "Authorization".to_owned(),
        format!(
            "algorithm=\"{algorithm}\",headers=\"date\",signature=\"{signature}\",apiKey=\"{}\"",
            client.api_key
        ),
    )
}

fn date_header() -> (String, String) {
    ("Date".to_owned(), now())
}

fn assert_error(answer: &LsAnswer, status: u16, code: &str) {
    assert_eq!(
        answer.status,
        status,
        "{code}: {}",
        String::from_utf8_lossy(&answer.body)
    );
    let body = answer.json();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(3),
        "exactly status, code, message: {body}"
    );
}

/// One test per case: `name: status "code" => |world, client| request;` where the request is
/// an `LsAnswer` future.
macro_rules! cases {
    ($($name:ident: $status:literal $code:literal => |$world:ident, $client:ident| $request:expr;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let $world = World::new();
                let dp = InProcessDataPlane::start($world.changes()).await;
                #[allow(unused_variables)]
                let $client = $world.client(&dp);
                let answer: LsAnswer = $request.await;
                assert_error(&answer, $status, $code);
                let _ = &dp;
            }
        )*
    };
}

cases! {
    unknown_product: 400 "unknown_product" => |w, c|
        c.call(Method::GET, "check_license", &with(params(&w, w.active.key.as_str(), "hw-1"), "product", json!("no-such-product")));
    activate_without_hardware_id: 400 "missing_parameters" => |w, c|
        c.call(Method::POST, "activate_license", &without(params(&w, w.active.key.as_str(), "hw-1"), "hardware_id"));
    check_without_license_key: 400 "missing_parameters" => |w, c|
        c.call(Method::GET, "check_license", &without(params(&w, w.active.key.as_str(), "hw-1"), "license_key"));
    an_unknown_key: 400 "license_not_found" => |w, c|
        c.call(Method::GET, "check_license", &params(&w, "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "hw-1"));
    a_malformed_key: 400 "license_not_found" => |w, c|
        c.call(Method::GET, "check_license", &params(&w, "not a key", "hw-1"));
    a_key_with_a_nul: 400 "license_not_found" => |w, c|
        c.call(Method::GET, "check_license", &params(&w, "AAAAA\u{0}BBBBB", "hw-1"));
    a_mistyped_field: 400 "validation_error" => |w, c|
        c.call(Method::POST, "activate_license", &with(params(&w, w.active.key.as_str(), "hw-1"), "is_vm", json!("perhaps")));
    deactivate_an_unknown_key: 400 "license_not_found" => |w, c|
        c.call(Method::POST, "deactivate_license", &params(&w, "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE", "hw-1"));
    check_a_device_without_a_seat: 400 "device_not_found" => |w, c|
        c.call(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-9"));
    check_suspended: 400 "license_not_enabled" => |w, c|
        c.call(Method::GET, "check_license", &params(&w, w.suspended.key.as_str(), "hw-1"));
    activate_suspended: 400 "license_not_enabled" => |w, c|
        c.call(Method::POST, "activate_license", &params(&w, w.suspended.key.as_str(), "hw-1"));
    check_revoked_with_a_seat: 400 "license_not_enabled" => |w, c|
        c.call(Method::GET, "check_license", &params(&w, w.revoked.key.as_str(), "hw-1"));
    activate_revoked: 400 "license_not_enabled" => |w, c|
        c.call(Method::POST, "activate_license", &params(&w, w.revoked.key.as_str(), "hw-2"));
    activate_not_yet_started: 400 "license_not_active" => |w, c|
        c.call(Method::POST, "activate_license", &params(&w, w.future.key.as_str(), "hw-1"));
    activate_expired: 400 "license_expired" => |w, c|
        c.call(Method::POST, "activate_license", &params(&w, w.expired.key.as_str(), "hw-2"));
    a_new_device_without_the_control_plane: 503 "control_plane_unavailable" => |w, c|
        c.call(Method::POST, "activate_license", &params(&w, w.active.key.as_str(), "hw-2"));
    deactivate_without_the_control_plane: 503 "control_plane_unavailable" => |w, c|
        c.call(Method::POST, "deactivate_license", &params(&w, w.active.key.as_str(), "hw-1"));
    no_authorization_header: 400 "missing_headers" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"), &[date_header()]);
    no_date_header: 400 "missing_headers" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &[auth_headers(&c.api_key, &c.shared_key, &now())[1].clone()]);
    a_date_that_is_no_date: 400 "authorization_invalid_headers" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &auth_headers(&c.api_key, &c.shared_key, "yesterday"));
    a_signature_that_is_not_base64: 400 "authorization_invalid_headers" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &[date_header(), authorization(&c, "hmac-sha256", "not base64!")]);
    another_algorithm: 400 "hmac_required" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &[date_header(), authorization(&c, "rsa-sha256", &STANDARD.encode([0_u8; 32]))]);
    a_bearer_token: 400 "hmac_required" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &[date_header(), ("Authorization".into(), "Bearer an-oauth-access-token".into())]);
    the_wrong_shared_key: 400 "signature_mismatch" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &auth_headers(&c.api_key, "not-the-shared-key", &now()));
    an_unknown_api_key: 400 "invalid_api_key" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &auth_headers("00000000-0000-0000-0000-000000000000", &c.shared_key, &now()));
    a_stale_date: 400 "date_header_diff" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &auth_headers(&c.api_key, &c.shared_key,
                &httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(20 * 60))));
    authorization_without_a_signature: 400 "authorization_missing_params" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &[date_header(), ("Authorization".into(), "algorithm=\"hmac-sha256\"".into())]);
    authorization_nonsense: 400 "authorization_invalid_headers" => |w, c|
        c.call_with_headers(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1"),
            &[date_header(), ("Authorization".into(), "nonsense".into())]);
    a_credential_of_another_product: 400 "api_key_product_not_allowed" => |w, _c| async {
        let dp = InProcessDataPlane::start(w.changes()).await;
        w.other_client(&dp).call(Method::GET, "check_license", &params(&w, w.active.key.as_str(), "hw-1")).await
    };
    a_key_asked_for_as_another_product: 400 "license_not_found" => |w, _c| async {
        let dp = InProcessDataPlane::start(w.changes()).await;
        w.other_client(&dp).call(Method::GET, "check_license",
            &json!({"product": w.other_product.code, "license_key": w.active.key.as_str(), "hardware_id": "hw-1"})).await
    };
}

#[tokio::test]
async fn bodies_that_are_not_json_are_invalid_json() {
    let world = World::new();
    let dp = InProcessDataPlane::start(world.changes()).await;
    let client = world.client(&dp);
    let headers: reqwest::header::HeaderMap =
        auth_headers(&client.api_key, &client.shared_key, &now())
            .iter()
            .map(|(n, v)| (n.parse().expect("name"), v.parse().expect("value")))
            .collect();
    for body in [&b"{not json"[..], b"\xff\xfe invalid utf-8", b"[[[[[[[[[["] {
        let response = client
            .client
            .post(format!("{}/api/v4/activate_license", dp.url))
            .headers(headers.clone())
            .body(body.to_vec())
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let answer: Value = response.json().await.expect("json");
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("invalid_json")),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_nul_in_a_text_field_is_refused_precisely() {
    let world = World::new();
    let dp = InProcessDataPlane::start(world.changes()).await;
    let answer = world
        .client(&dp)
        .call(
            Method::POST,
            "activate_license",
            &with(
                params(&world, world.active.key.as_str(), "hw-1"),
                "product",
                json!("de\u{0}sk"),
            ),
        )
        .await;
    assert_error(&answer, 400, "unknown_product");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_in_the_error_shape() {
    let world = World::new();
    let dp = InProcessDataPlane::start(world.changes()).await;
    let oversize = with(
        params(&world, world.active.key.as_str(), "hw-1"),
        "hostname",
        json!("x".repeat(32 * 1024)),
    );
    let answer = world
        .client(&dp)
        .call(Method::POST, "activate_license", &oversize)
        .await;
    assert_eq!(
        (answer.status, answer.json()),
        (
            413,
            json!({"status": 413, "code": "payload_too_large",
                   "message": "the request body is larger than this server accepts"})
        )
    );
}

#[tokio::test]
async fn an_expired_license_a_device_holds_is_described_marked_expired() {
    let world = World::new();
    let dp = InProcessDataPlane::start(world.changes()).await;
    let answer = world
        .client(&dp)
        .call(
            Method::GET,
            "check_license",
            &params(&world, world.expired.key.as_str(), "hw-1"),
        )
        .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["is_expired"], true);
}
