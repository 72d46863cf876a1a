//! A LicenseSpring License API client for the tests, signing requests exactly as LicenseSpring's
//! SDKs do (`Date` + HMAC `Authorization`), and checking the `LicenseSignature` of answers
//! against a data plane's published JWKS.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use license_shared::signing::Jwks;
use reqwest::Method;
use serde_json::Value;
use sha2::Sha256;

/// A credential and where to send requests.
#[derive(Debug, Clone)]
pub struct LsClient {
    pub client: reqwest::Client,
    pub base_url: String,
    pub api_key: String,
    pub shared_key: String,
}

/// An answer: status, exact body bytes, `LicenseSignature` and `LicenseSignatureKid` headers.
#[derive(Debug, Clone)]
pub struct LsAnswer {
    pub status: u16,
    pub body: Vec<u8>,
    pub signature: Option<String>,
    pub kid: Option<String>,
}

impl LsAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The error code of a failed call.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    /// Whether the signature header verifies against `jwks` for the exact body bytes.
    pub fn signature_verifies(&self, jwks: &Jwks) -> bool {
        self.signature.as_deref().is_some_and(|signature| {
            jwks.verify(self.kid.as_deref(), &self.body, signature)
                .is_ok()
        })
    }
}

/// `Date` and `Authorization` headers for `date`, signed with `shared_key`.
pub fn auth_headers(api_key: &str, shared_key: &str, date: &str) -> [(String, String); 2] {
    let mut mac = Hmac::<Sha256>::new_from_slice(shared_key.as_bytes()).expect("any key length");
    mac.update(format!("licenseSpring\ndate: {date}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    [
        ("Date".into(), date.into()),
        (
            "Authorization".into(),
            format!(
                "algorithm=\"hmac-sha256\",headers=\"date\",signature=\"{signature}\",apiKey=\"{api_key}\""
            ),
        ),
    ]
}

impl LsClient {
    /// Sends `GET check_license` with query `params` or a POST with JSON `params`, signed now.
    pub async fn call(&self, method: Method, endpoint: &str, params: &Value) -> LsAnswer {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        self.call_with_headers(
            method,
            endpoint,
            params,
            &auth_headers(&self.api_key, &self.shared_key, &date),
        )
        .await
    }

    /// The same with the given headers instead of correct ones.
    pub async fn call_with_headers(
        &self,
        method: Method,
        endpoint: &str,
        params: &Value,
        headers: &[(String, String)],
    ) -> LsAnswer {
        let url = format!("{}/api/v4/{endpoint}", self.base_url);
        let mut request = self.client.request(method.clone(), url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request = if method == Method::GET {
            let pairs: Vec<(String, String)> = params
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, value)| {
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    (name.clone(), text)
                })
                .collect();
            request.query(&pairs)
        } else {
            request.json(params)
        };
        let response = request.send().await.expect("the data plane answers");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let (signature, kid) = (header("LicenseSignature"), header("LicenseSignatureKid"));
        LsAnswer {
            status: response.status().as_u16(),
            signature,
            kid,
            body: response.bytes().await.expect("a body").to_vec(),
        }
    }

    /// The data plane's published keys.
    pub async fn jwks(&self) -> Jwks {
        self.client
            .get(format!("{}/.well-known/jwks.json", self.base_url))
            .send()
            .await
            .expect("the data plane answers")
            .json()
            .await
            .expect("a JWKS")
    }
}
