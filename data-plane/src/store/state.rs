//! [`State`]: everything a data plane knows as of one revision, and its forward-only apply: an
//! entity's version replaces the stored one only if it is newer, so a late or repeated change
//! never brings back an older version.

use std::sync::Arc;

use license_shared::protocol::{Change, EntityKind};
use license_shared::{Customer, License, LicenseKey, Product};
use uuid::Uuid;

use super::index::{CustomerById, LicenseById, LicenseByKey, ProductByCode, ProductById};
use super::keyring::Keyring;
use super::sharded::{LARGE_FANOUT, SMALL_FANOUT, Sharded};

/// Everything a data plane knows, as of one revision. Cheap to clone (the shards are shared).
#[derive(Debug, Clone)]
pub struct State {
    pub(super) revision: i64,
    pub(super) has_state: bool,
    /// The license set (database) this state belongs to.
    pub(super) cluster_id: Option<Uuid>,
    pub(super) licenses: Sharded<LicenseByKey>,
    pub(super) license_ids: Sharded<LicenseById>,
    pub(super) products: Sharded<ProductById>,
    pub(super) product_codes: Sharded<ProductByCode>,
    pub(super) customers: Sharded<CustomerById>,
    /// API credentials and signing keys (few; copied whole on change).
    pub(super) keyring: Arc<Keyring>,
}

impl Default for State {
    fn default() -> Self {
        State {
            revision: 0,
            has_state: false,
            cluster_id: None,
            licenses: Sharded::new(LARGE_FANOUT),
            license_ids: Sharded::new(LARGE_FANOUT),
            products: Sharded::new(SMALL_FANOUT),
            product_codes: Sharded::new(SMALL_FANOUT),
            customers: Sharded::new(LARGE_FANOUT),
            keyring: Arc::default(),
        }
    }
}

impl State {
    /// The revision this state reflects: every change up to it has been applied.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Whether this state came from a snapshot or the disk cache (an empty store has none).
    pub fn has_state(&self) -> bool {
        self.has_state
    }

    /// The license set (control plane database) this state was copied from.
    pub fn cluster_id(&self) -> Option<Uuid> {
        self.cluster_id
    }

    /// The license with this key: the hot path of every verify.
    pub fn license(&self, key: &LicenseKey) -> Option<&License> {
        self.licenses.get(key).map(|entry| entry.0.as_ref())
    }

    /// The license with this id.
    pub fn license_by_id(&self, id: Uuid) -> Option<&License> {
        self.license_ids.get(&id).map(|entry| entry.0.as_ref())
    }

    /// The product with this id.
    pub fn product(&self, id: Uuid) -> Option<&Product> {
        self.products.get(&id).map(|entry| entry.0.as_ref())
    }

    /// The product with this code (exact match).
    pub fn product_by_code(&self, code: &str) -> Option<&Product> {
        self.product_codes.get(code).map(|entry| entry.0.as_ref())
    }

    /// The customer with this id.
    pub fn customer(&self, id: Uuid) -> Option<&Customer> {
        self.customers.get(&id).map(|entry| entry.0.as_ref())
    }

    /// API credentials and signing keys.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// How many licenses this state holds.
    pub fn license_count(&self) -> usize {
        self.license_ids.len()
    }

    /// How many products this state holds.
    pub fn product_count(&self) -> usize {
        self.products.len()
    }

    /// How many customers this state holds.
    pub fn customer_count(&self) -> usize {
        self.customers.len()
    }

    /// Every license, in no particular order.
    pub fn licenses(&self) -> impl Iterator<Item = &License> {
        self.license_ids.iter().map(|entry| entry.0.as_ref())
    }

    /// Every product, in no particular order.
    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.products.iter().map(|entry| entry.0.as_ref())
    }

    /// Every customer, in no particular order.
    pub fn customers(&self) -> impl Iterator<Item = &Customer> {
        self.customers.iter().map(|entry| entry.0.as_ref())
    }

    /// Applies one change, only forward; says whether it changed anything. An upsert applies
    /// when the entity is unknown or stored at a lower revision; a deletion applies when the
    /// stored entity is not newer than the tombstone.
    pub(super) fn apply(&mut self, change: Change) -> bool {
        match change {
            Change::License(license) => self.upsert_license(license),
            Change::Product(product) => self.upsert_product(product),
            Change::Customer(customer) => self.upsert_customer(customer),
            Change::Credential(credential) => {
                Arc::make_mut(&mut self.keyring).upsert_credential(credential)
            }
            Change::SigningKey(key) => Arc::make_mut(&mut self.keyring).upsert_signing_key(key),
            Change::Deleted { kind, id, revision } => match kind {
                EntityKind::License => self.delete_license(id, revision),
                EntityKind::Product => self.delete_product(id, revision),
                EntityKind::Customer => self.delete_customer(id, revision),
                EntityKind::Credential => {
                    Arc::make_mut(&mut self.keyring).delete_credential(id, revision)
                }
                EntityKind::SigningKey => {
                    Arc::make_mut(&mut self.keyring).delete_signing_key(id, revision)
                }
            },
        }
    }

    fn upsert_license(&mut self, license: License) -> bool {
        if let Some(stored) = self.license_by_id(license.id) {
            if stored.revision >= license.revision {
                return false;
            }
            if stored.key != license.key {
                let old_key = stored.key.clone();
                self.unindex_key(&old_key, license.id);
            }
        }
        let license = Arc::new(license);
        // Both inserts replace the older version in place.
        self.licenses.insert(LicenseByKey(Arc::clone(&license)));
        self.license_ids.insert(LicenseById(license));
        true
    }

    fn delete_license(&mut self, id: Uuid, revision: i64) -> bool {
        let Some(stored) = self.license_by_id(id) else {
            return false;
        };
        if stored.revision > revision {
            return false;
        }
        let key = stored.key.clone();
        self.unindex_key(&key, id);
        self.license_ids.remove(&id);
        true
    }

    /// Drops `key` from the key index if it still points at license `id`: keys are unique, but
    /// one license's stale key must never take another's entry away.
    fn unindex_key(&mut self, key: &LicenseKey, id: Uuid) {
        if self.license(key).is_some_and(|holder| holder.id == id) {
            self.licenses.remove(key);
        }
    }

    fn upsert_product(&mut self, product: Product) -> bool {
        if let Some(stored) = self.product(product.id) {
            if stored.revision >= product.revision {
                return false;
            }
            if stored.code != product.code {
                let old_code = stored.code.clone();
                self.unindex_code(&old_code, product.id);
            }
        }
        let product = Arc::new(product);
        self.product_codes
            .insert(ProductByCode(Arc::clone(&product)));
        self.products.insert(ProductById(product));
        true
    }

    fn delete_product(&mut self, id: Uuid, revision: i64) -> bool {
        let Some(stored) = self.product(id) else {
            return false;
        };
        if stored.revision > revision {
            return false;
        }
        let code = stored.code.clone();
        self.unindex_code(&code, id);
        self.products.remove(&id);
        true
    }

    fn unindex_code(&mut self, code: &str, id: Uuid) {
        if self
            .product_by_code(code)
            .is_some_and(|holder| holder.id == id)
        {
            self.product_codes.remove(code);
        }
    }

    fn upsert_customer(&mut self, customer: Customer) -> bool {
        if self
            .customer(customer.id)
            .is_some_and(|stored| stored.revision >= customer.revision)
        {
            return false;
        }
        self.customers.insert(CustomerById(Arc::new(customer)));
        true
    }

    fn delete_customer(&mut self, id: Uuid, revision: i64) -> bool {
        if self
            .customer(id)
            .is_none_or(|stored| stored.revision > revision)
        {
            return false;
        }
        self.customers.remove(&id);
        true
    }
}
