//! The native public API of a data plane (seed 003) and its unrouted requests: one test per
//! error case, each in `{status, code, message}`.

use integration_tests::data_plane::{InProcessDataPlane, World};
use serde_json::{Value, json};

/// Sends `body` (raw bytes) with `method` to `path`; returns the status and the JSON answer.
async fn send(
    dp: &InProcessDataPlane,
    method: reqwest::Method,
    path: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", dp.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the data plane answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// One test per case: `name: status "code" => METHOD "/path" |world| body;`.
macro_rules! cases {
    ($($name:ident: $status:literal $code:literal => $method:ident $path:literal |$world:ident| $body:expr;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let $world = World::new();
                let dp = InProcessDataPlane::start($world.changes()).await;
                let body: Vec<u8> = $body;
                let (status, answer) = send(&dp, reqwest::Method::$method, $path, body).await;
                assert_eq!(status, $status, "{answer}");
                assert_eq!(answer["code"], $code, "{answer}");
                assert_eq!(answer["status"], $status, "{answer}");
                assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
                assert_eq!(answer.as_object().map(|o| o.len()), Some(3), "{answer}");
            }
        )*
    };
}

fn json_body(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

cases! {
    verify_an_unknown_key: 404 "license_not_found" => POST "/api/licenses/verify"
        |w| json_body(json!({"licenseKey": "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE"}));
    verify_a_malformed_key: 400 "invalid_license_key" => POST "/api/licenses/verify"
        |w| json_body(json!({"licenseKey": "not a key"}));
    verify_without_a_key: 400 "missing_field" => POST "/api/licenses/verify"
        |w| json_body(json!({}));
    verify_a_bad_product_id: 400 "invalid_uuid" => POST "/api/licenses/verify"
        |w| json_body(json!({"licenseKey": w.active.key.as_str(), "productId": "nope"}));
    verify_malformed_json: 400 "malformed_json" => POST "/api/licenses/verify"
        |w| b"{\"licenseKey\":".to_vec();
    verify_invalid_utf8: 400 "malformed_json" => POST "/api/licenses/verify"
        |w| b"{\"licenseKey\":\"\xff\xfe\"}".to_vec();
    verify_a_nul_in_the_key: 400 "invalid_license_key" => POST "/api/licenses/verify"
        |w| json_body(json!({"licenseKey": "AAAAA\u{0}BBBBB"}));
    verify_deeply_nested_json: 400 "invalid_field" => POST "/api/licenses/verify"
        |w| format!("{}{}", "[".repeat(5_000), "]".repeat(5_000)).into_bytes();
    verify_a_huge_body: 413 "payload_too_large" => POST "/api/licenses/verify"
        |w| json_body(json!({"licenseKey": "x".repeat(64 * 1024)}));
    validate_suspended: 403 "license_suspended" => POST "/api/licenses/validate"
        |w| json_body(json!({"licenseKey": w.suspended.key.as_str(), "deviceId": "hw-1"}));
    validate_revoked: 403 "license_revoked" => POST "/api/licenses/validate"
        |w| json_body(json!({"licenseKey": w.revoked.key.as_str(), "deviceId": "hw-1"}));
    validate_expired: 403 "license_expired" => POST "/api/licenses/validate"
        |w| json_body(json!({"licenseKey": w.expired.key.as_str(), "deviceId": "hw-1"}));
    validate_not_yet_started: 403 "license_not_started" => POST "/api/licenses/validate"
        |w| json_body(json!({"licenseKey": w.future.key.as_str(), "deviceId": "hw-1"}));
    validate_another_product: 403 "product_mismatch" => POST "/api/licenses/validate"
        |w| json_body(json!({"licenseKey": w.active.key.as_str(), "deviceId": "hw-1",
                             "productId": w.other_product.id}));
    validate_without_a_device: 400 "missing_field" => POST "/api/licenses/validate"
        |w| json_body(json!({"licenseKey": w.active.key.as_str()}));
    validate_a_new_device_without_the_control_plane: 503 "control_plane_unavailable" => POST "/api/licenses/validate"
        |w| json_body(json!({"licenseKey": w.active.key.as_str(), "deviceId": "hw-2"}));
    document_of_an_unknown_key: 404 "license_not_found" => GET "/api/licenses/AAAAA-BBBBB-CCCCC-DDDDD-EEEEE/document"
        |w| Vec::new();
    an_unknown_path: 404 "not_found" => GET "/api/no-such-endpoint" |w| Vec::new();
    a_wrong_method: 405 "method_not_allowed" => GET "/api/licenses/verify" |w| Vec::new();
}

#[tokio::test]
async fn verify_answers_from_the_seeded_store() {
    let world = World::new();
    let dp = InProcessDataPlane::start(world.changes()).await;
    let (status, answer) = send(
        &dp,
        reqwest::Method::POST,
        "/api/licenses/verify",
        json_body(json!({"licenseKey": world.active.key.as_str(), "deviceId": "hw-1"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["valid"], true, "{answer}");
}
