//! Synthetic replicated entities shaped like the seeded ones (edition `pro`, at most 5 devices,
//! the three [`FEATURES`](crate::seed::FEATURES)), and data-plane stores filled with them, for
//! the in-process measurements of the runner and the criterion micro-benchmarks.

use chrono::Utc;
use data_plane::store::{SnapshotBuilder, Store};
use license_shared::protocol::Change;
use license_shared::{
    ActiveDevice, AuthorizationMethod, CompactJson, Customer, License, LicenseKey, LicenseStatus,
    LicenseType, Product,
};
use uuid::Uuid;

use crate::seed::FEATURES;

/// The device every seeded license of the first set has activated.
pub const DEVICE: &str = "bench-device";

/// A license like the seeded ones, at `revision`; `with_device` gives it [`DEVICE`].
pub fn license(revision: i64, product_id: Uuid, customer_id: Uuid, with_device: bool) -> License {
    let now = Utc::now();
    License {
        id: Uuid::new_v4(),
        number: revision,
        key: LicenseKey::generate(None),
        product_id,
        customer_id,
        edition: Some("pro".to_owned()),
        status: LicenseStatus::Active,
        license_type: LicenseType::Perpetual,
        max_activations: Some(5),
        features: CompactJson::from_text(FEATURES.to_owned())
            .unwrap_or_else(|_| CompactJson::empty_object()),
        starts_at: None,
        expires_at: None,
        notes: None,
        metadata: CompactJson::empty_object(),
        active_devices: if with_device {
            vec![ActiveDevice {
                device_id: DEVICE.to_owned(),
                device_name: Some("bench machine".to_owned()),
                activated_at: now,
            }]
        } else {
            Vec::new()
        },
        created_at: now,
        updated_at: now,
        revision,
    }
}

/// The product of the benchmark licenses.
pub fn product(id: Uuid) -> Product {
    let now = Utc::now();
    Product {
        id,
        code: "bench".to_owned(),
        name: "Benchmark app".to_owned(),
        authorization_method: AuthorizationMethod::LicenseKey,
        key_prefix: None,
        metadata: serde_json::json!({}),
        revision: 1,
        created_at: now,
        updated_at: now,
    }
}

/// The customer of the benchmark licenses.
pub fn customer(id: Uuid) -> Customer {
    let now = Utc::now();
    Customer {
        id,
        email: "bench@example.com".to_owned(),
        first_name: None,
        last_name: None,
        company_name: None,
        reference: None,
        metadata: serde_json::json!({}),
        revision: 2,
        created_at: now,
        updated_at: now,
    }
}

/// A store holding `count` licenses (built as a snapshot is, in chunks of 2,000), and
/// `sample` of them spread over the set, to look up or change.
pub fn store(count: usize, sample: usize) -> (Store, Vec<License>) {
    let (product_id, customer_id) = (Uuid::new_v4(), Uuid::new_v4());
    let store = Store::new();
    let mut builder = SnapshotBuilder::new(Some(Uuid::nil()));
    builder.push(Change::Product(product(product_id)));
    builder.push(Change::Customer(customer(customer_id)));
    let every = (count / sample.max(1)).max(1);
    let mut picked = Vec::with_capacity(sample);
    let mut chunk = Vec::with_capacity(2_000);
    for n in 0..count {
        let license = license(3 + n as i64, product_id, customer_id, n % 10 == 0);
        if n % every == 0 && picked.len() < sample {
            picked.push(license.clone());
        }
        chunk.push(Change::License(license));
        if chunk.len() == 2_000 {
            builder.add(std::mem::take(&mut chunk));
        }
    }
    builder.add(chunk);
    store.replace(builder.build(3 + count as i64));
    (store, picked)
}
