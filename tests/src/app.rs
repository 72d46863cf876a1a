//! [`TestApp`]: a real control plane started in-process on a random port, on its own fresh
//! database, with a bootstrap admin token and typed helpers for the common requests.

use std::time::Duration;

use control_plane::{Application, ServeArgs};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::pg;

/// The bootstrap admin token every test app accepts.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A running control plane. Stops when dropped.
#[derive(Debug)]
pub struct TestApp {
    pub base_url: String,
    pub database_url: String,
    pub client: reqwest::Client,
    /// A pool on the app's database, for assertions about what was stored.
    pub db: PgPool,
    stop: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// A control plane on a fresh database.
    pub async fn spawn() -> Self {
        let database_url = pg::fresh_database().await.expect("a fresh test database");
        Self::spawn_with(&database_url, |_| {}).await
    }

    /// A control plane on `database_url`, with settings adjusted by `configure`.
    pub async fn spawn_with(database_url: &str, configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let mut args = ServeArgs::with_database_url(database_url);
        args.admin_listen = "127.0.0.1:0".parse().expect("an address");
        args.admin_token = Some(ADMIN_TOKEN.to_owned());
        args.shutdown_timeout = Duration::from_secs(1);
        configure(&mut args);
        let app = Application::build(args)
            .await
            .expect("the control plane starts");
        let base_url = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        let db = PgPool::connect(database_url).await.expect("a test pool");
        TestApp {
            base_url,
            database_url: database_url.to_owned(),
            client: reqwest::Client::new(),
            db,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A request with the bootstrap admin token.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// An admin request without a body, sent.
    pub async fn call(&self, method: Method, path: &str) -> Response {
        self.admin(method, path)
            .send()
            .await
            .expect("the request is sent")
    }

    /// An admin request with a JSON body, sent.
    pub async fn call_with(&self, method: Method, path: &str, body: &Value) -> Response {
        self.admin(method, path)
            .json(body)
            .send()
            .await
            .expect("the request is sent")
    }

    /// `GET path` as the admin, decoded as JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.admin(Method::GET, path)
            .send()
            .await
            .expect("the request is sent")
            .json()
            .await
            .expect("a JSON body")
    }

    /// A request without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Creates a product and returns its JSON.
    pub async fn create_product(&self, code: &str) -> Value {
        let body = json!({ "code": code, "name": format!("Product {code}") });
        created(
            self.admin(Method::POST, "/api/products")
                .json(&body)
                .send()
                .await,
        )
        .await
    }

    /// Creates a customer and returns its JSON.
    pub async fn create_customer(&self, email: &str) -> Value {
        let body = json!({ "email": email });
        created(
            self.admin(Method::POST, "/api/customers")
                .json(&body)
                .send()
                .await,
        )
        .await
    }

    /// Creates a license for a new product and customer, with `fields` merged into the
    /// request, and returns its JSON.
    pub async fn create_license(&self, fields: Value) -> Value {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let product = self.create_product(&format!("p-{suffix}")).await;
        let customer = self
            .create_customer(&format!("c-{suffix}@example.com"))
            .await;
        let mut body = json!({ "productId": product["id"], "customerId": customer["id"] });
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        created(
            self.admin(Method::POST, "/api/licenses")
                .json(&body)
                .send()
                .await,
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn created(response: reqwest::Result<Response>) -> Value {
    let response = response.expect("the request is sent");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(status, 201, "expected 201 Created, got {status}: {body}");
    body
}

/// Asserts an error answer: its HTTP status, and the same status and `code` in the body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(
        (actual, body["code"].as_str()),
        (status, Some(code)),
        "unexpected answer: {body}"
    );
    assert_eq!(body["status"], status, "body status matches: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}
