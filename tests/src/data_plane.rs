//! An in-process data plane for API tests: the data plane's real public service on a loopback
//! port 0, with a store seeded directly (no control plane, no database, no cluster link),
//! driven over real HTTP. The bottom of the test pyramid for everything a data plane answers
//! from memory; what needs the control plane (activation of a new device, propagation, the
//! cluster promises) stays in the process-level cluster tests.
//!
//! [`World`] is a fixed set of entities the error tables are written against: a key-based
//! product with an API credential, a second product with its own credential, and licenses in
//! every state.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use data_plane::api::{self, PublicState};
use data_plane::cluster::Link;
use data_plane::store::Store;
use license_shared::credential::{ApiCredential, SharedKey};
use license_shared::protocol::Change;
use license_shared::signing::ClusterKey;
use license_shared::{
    ActiveDevice, AuthorizationMethod, CompactJson, Customer, License, LicenseKey, LicenseStatus,
    LicenseType, Product,
};
use uuid::Uuid;

use crate::licensespring::LsClient;

/// A running in-process data plane; stops when dropped.
#[derive(Debug)]
pub struct InProcessDataPlane {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub store: Arc<Store>,
    pub link: Arc<Link>,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for InProcessDataPlane {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

impl InProcessDataPlane {
    /// Serves `changes` (applied as one snapshot at revision 1) on a free loopback port. With
    /// no control plane, anything forwarded to it answers 503 at once.
    pub async fn start(changes: Vec<Change>) -> Self {
        let store = Arc::new(Store::new());
        let mut snapshot = store.begin_snapshot(Uuid::new_v4());
        snapshot.add(changes);
        store.finish_snapshot(snapshot, 1);
        let link = Arc::new(Link::new());
        let service = api::service(
            PublicState {
                store: store.clone(),
                link: link.clone(),
                activation_timeout: Duration::from_secs(1),
            },
            16 * 1024,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let serving = tokio::spawn(async move {
            let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(service);
            axum::serve(listener, service).await.ok();
        });
        InProcessDataPlane {
            url,
            store,
            link,
            serving,
        }
    }
}

/// The entities of the error tables.
#[derive(Debug, Clone)]
pub struct World {
    /// The key-based product `desk` and the credential for it.
    pub product: Product,
    pub credential: ApiCredential,
    /// Another product, `other`, with a credential that may use only it.
    pub other_product: Product,
    pub other_credential: ApiCredential,
    /// Active, two seats, `hw-1` holding one.
    pub active: License,
    pub suspended: License,
    /// Revoked while `hw-1` held a seat.
    pub revoked: License,
    /// Starts in 2999.
    pub future: License,
    /// Expired in 2001, `hw-1` holding a seat.
    pub expired: License,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        let now = Utc::now();
        let product = product_coded("desk", now);
        let other_product = product_coded("other", now);
        let customer = customer(now);
        let credential = credential_for("desk-app", &product, now);
        let other_credential = credential_for("other-app", &other_product, now);
        let license = |status, starts_at, expires_at, devices: &[&str]| {
            license(
                &product, &customer, status, starts_at, expires_at, devices, now,
            )
        };
        let year = |year: i32| {
            DateTime::parse_from_rfc3339(&format!("{year}-01-01T00:00:00Z"))
                .map(|at| at.with_timezone(&Utc))
                .ok()
        };
        World {
            active: license(LicenseStatus::Active, None, None, &["hw-1"]),
            suspended: license(LicenseStatus::Suspended, None, None, &[]),
            revoked: license(LicenseStatus::Revoked, None, None, &["hw-1"]),
            future: license(LicenseStatus::Active, year(2999), None, &[]),
            expired: license(LicenseStatus::Active, None, year(2001), &["hw-1"]),
            product,
            credential,
            other_product,
            other_credential,
        }
    }

    /// Every entity, as the changes of one snapshot (with a signing key).
    pub fn changes(&self) -> Vec<Change> {
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let key = ClusterKey::new(Uuid::new_v4(), signing_key, true, 1);
        let mut changes = vec![
            Change::SigningKey(key),
            Change::Product(self.product.clone()),
            Change::Product(self.other_product.clone()),
            Change::Customer(customer(self.active.created_at)),
            Change::Credential(self.credential.clone()),
            Change::Credential(self.other_credential.clone()),
        ];
        changes.extend(
            [
                &self.active,
                &self.suspended,
                &self.revoked,
                &self.future,
                &self.expired,
            ]
            .into_iter()
            .cloned()
            .map(Change::License),
        );
        changes
    }

    /// A LicenseSpring client of `dp` with this world's `desk` credential.
    pub fn client(&self, dp: &InProcessDataPlane) -> LsClient {
        LsClient {
            client: reqwest::Client::new(),
            base_url: dp.url.clone(),
            api_key: self.credential.api_key.clone(),
            shared_key: self.credential.shared_key.expose().to_owned(),
        }
    }

    /// The same with the `other` credential.
    pub fn other_client(&self, dp: &InProcessDataPlane) -> LsClient {
        LsClient {
            api_key: self.other_credential.api_key.clone(),
            shared_key: self.other_credential.shared_key.expose().to_owned(),
            ..self.client(dp)
        }
    }
}

fn product_coded(code: &str, now: DateTime<Utc>) -> Product {
    Product {
        id: Uuid::new_v4(),
        code: code.to_owned(),
        name: format!("{code} app"),
        authorization_method: AuthorizationMethod::LicenseKey,
        key_prefix: None,
        metadata: serde_json::json!({}),
        revision: 1,
        created_at: now,
        updated_at: now,
    }
}

/// The one customer; always the same id, so every license's `customer_id` finds it.
fn customer(now: DateTime<Utc>) -> Customer {
    Customer {
        id: Uuid::from_u128(42),
        email: "ada@example.com".to_owned(),
        first_name: Some("Ada".to_owned()),
        last_name: Some("Lovelace".to_owned()),
        company_name: Some("Engines Ltd".to_owned()),
        reference: None,
        metadata: serde_json::json!({}),
        revision: 1,
        created_at: now,
        updated_at: now,
    }
}

fn credential_for(name: &str, product: &Product, now: DateTime<Utc>) -> ApiCredential {
    ApiCredential {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        api_key: Uuid::new_v4().to_string(),
        shared_key: SharedKey::new(format!("shared-{}", Uuid::new_v4().simple())),
        product_ids: vec![product.id],
        revision: 1,
        created_at: now,
    }
}

fn license(
    product: &Product,
    customer: &Customer,
    status: LicenseStatus,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    devices: &[&str],
    now: DateTime<Utc>,
) -> License {
    License {
        id: Uuid::new_v4(),
        number: 1,
        key: LicenseKey::generate(None),
        product_id: product.id,
        customer_id: customer.id,
        edition: None,
        status,
        license_type: LicenseType::Perpetual,
        max_activations: Some(2),
        features: CompactJson::empty_object(),
        starts_at,
        expires_at,
        notes: None,
        metadata: CompactJson::empty_object(),
        active_devices: devices
            .iter()
            .map(|device| ActiveDevice {
                device_id: (*device).to_owned(),
                device_name: None,
                activated_at: now,
            })
            .collect(),
        created_at: now,
        updated_at: now,
        revision: 1,
    }
}
