//! The in-memory license store (DESIGN §6). Readers are lock-free: they `load()` an immutable
//! [`State`] through arc-swap. The one writer (the cluster client) builds the next state from
//! the current one with persistent maps (`imbl`), so applying a change costs O(log n) and
//! shares everything it did not touch: a million licenses are never copied per delta.

use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use imbl::HashMap;
use license_shared::protocol::{Change, EntityKind};
use license_shared::{Customer, License, LicenseKey, Product};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Everything a data plane knows, as of one revision.
#[derive(Debug, Clone, Default)]
pub struct State {
    revision: i64,
    has_state: bool,
    /// The license set this state belongs to.
    cluster_id: Option<Uuid>,
    licenses: HashMap<LicenseKey, Arc<License>>,
    license_keys: HashMap<Uuid, LicenseKey>,
    products: HashMap<Uuid, Arc<Product>>,
    customers: HashMap<Uuid, Arc<Customer>>,
}

impl State {
    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn cluster_id(&self) -> Option<Uuid> {
        self.cluster_id
    }

    pub fn license(&self, key: &LicenseKey) -> Option<&License> {
        self.licenses.get(key).map(Arc::as_ref)
    }

    pub fn license_by_id(&self, id: Uuid) -> Option<&License> {
        self.license_keys.get(&id).and_then(|key| self.license(key))
    }

    pub fn product(&self, id: Uuid) -> Option<&Product> {
        self.products.get(&id).map(Arc::as_ref)
    }

    pub fn product_by_code(&self, code: &str) -> Option<&Product> {
        self.products
            .values()
            .find(|product| product.code == code)
            .map(Arc::as_ref)
    }

    pub fn customer(&self, id: Uuid) -> Option<&Customer> {
        self.customers.get(&id).map(Arc::as_ref)
    }

    pub fn license_count(&self) -> usize {
        self.licenses.len()
    }

    /// Applies one change, only forward: an entity never goes back to an older revision.
    fn apply(&mut self, change: Change) {
        match change {
            Change::License(license) => {
                if self
                    .license_by_id(license.id)
                    .is_some_and(|stored| stored.revision >= license.revision)
                {
                    return;
                }
                if let Some(old_key) = self.license_keys.get(&license.id) {
                    if *old_key != license.key {
                        let old_key = old_key.clone();
                        self.licenses.remove(&old_key);
                    }
                }
                self.license_keys.insert(license.id, license.key.clone());
                self.licenses.insert(license.key.clone(), Arc::new(license));
            }
            Change::Product(product) => {
                if self
                    .products
                    .get(&product.id)
                    .is_some_and(|stored| stored.revision >= product.revision)
                {
                    return;
                }
                self.products.insert(product.id, Arc::new(product));
            }
            Change::Customer(customer) => {
                if self
                    .customers
                    .get(&customer.id)
                    .is_some_and(|stored| stored.revision >= customer.revision)
                {
                    return;
                }
                self.customers.insert(customer.id, Arc::new(customer));
            }
            Change::Deleted { kind, id, revision } => match kind {
                EntityKind::License => {
                    if self
                        .license_by_id(id)
                        .is_some_and(|stored| stored.revision > revision)
                    {
                        return;
                    }
                    if let Some(key) = self.license_keys.remove(&id) {
                        self.licenses.remove(&key);
                    }
                }
                EntityKind::Product => {
                    self.products.remove(&id);
                }
                EntityKind::Customer => {
                    self.customers.remove(&id);
                }
            },
        }
    }

    /// The state as plain lists, for the disk cache.
    pub fn image(&self) -> StateImage {
        StateImage {
            revision: self.revision,
            cluster_id: self.cluster_id,
            products: self.products.values().map(|p| Product::clone(p)).collect(),
            customers: self
                .customers
                .values()
                .map(|c| Customer::clone(c))
                .collect(),
            licenses: self.licenses.values().map(|l| License::clone(l)).collect(),
        }
    }

    /// Rebuilds a state from its image.
    pub fn from_image(image: StateImage) -> Self {
        let mut state = State {
            revision: image.revision,
            has_state: true,
            cluster_id: image.cluster_id,
            ..State::default()
        };
        let changes = image
            .products
            .into_iter()
            .map(Change::Product)
            .chain(image.customers.into_iter().map(Change::Customer))
            .chain(image.licenses.into_iter().map(Change::License));
        for change in changes {
            state.apply(change);
        }
        state
    }
}

/// A state as plain lists (the disk cache's payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateImage {
    pub revision: i64,
    #[serde(default)]
    pub cluster_id: Option<Uuid>,
    pub products: Vec<Product>,
    pub customers: Vec<Customer>,
    pub licenses: Vec<License>,
}

/// A full snapshot being received; the current state stays in service until it is finished.
#[derive(Debug)]
pub struct SnapshotBuilder {
    state: State,
}

impl SnapshotBuilder {
    pub fn add(&mut self, changes: Vec<Change>) {
        for change in changes {
            self.state.apply(change);
        }
    }
}

/// The store: lock-free reads, one writer at a time.
#[derive(Debug)]
pub struct Store {
    current: ArcSwap<State>,
    writer: Mutex<()>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store, not ready until it receives a state.
    pub fn new() -> Self {
        Store {
            current: ArcSwap::from_pointee(State::default()),
            writer: Mutex::new(()),
        }
    }

    /// The current state, without locking (the hot path).
    pub fn load(&self) -> Guard<Arc<State>> {
        self.current.load()
    }

    /// The current state, to keep beyond a request.
    pub fn load_full(&self) -> Arc<State> {
        self.current.load_full()
    }

    pub fn has_state(&self) -> bool {
        self.current.load().has_state
    }

    pub fn revision(&self) -> i64 {
        self.current.load().revision
    }

    /// Replaces everything (a disk cache at start).
    pub fn replace(&self, state: State) {
        let _writer = self.lock();
        self.current.store(Arc::new(state));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Applies changes up to `revision`, in order, only forward.
    pub fn apply_deltas(&self, revision: i64, changes: Vec<Change>) {
        let _writer = self.lock();
        let mut next = State::clone(&self.current.load());
        for change in changes {
            next.apply(change);
        }
        next.revision = next.revision.max(revision);
        self.current.store(Arc::new(next));
    }

    /// Applies one entity learned outside the feed (an activation's answer) without moving
    /// the revision: the feed will bring it again, and it is ignored then.
    pub fn apply_entity(&self, change: Change) {
        let _writer = self.lock();
        let mut next = State::clone(&self.current.load());
        next.apply(change);
        self.current.store(Arc::new(next));
    }

    /// Starts receiving a snapshot of the license set `cluster_id`.
    pub fn begin_snapshot(&self, cluster_id: Uuid) -> SnapshotBuilder {
        SnapshotBuilder {
            state: State {
                cluster_id: Some(cluster_id),
                ..State::default()
            },
        }
    }

    /// Swaps a complete snapshot in, as of `revision`.
    pub fn finish_snapshot(&self, builder: SnapshotBuilder, revision: i64) {
        let mut state = builder.state;
        state.revision = revision;
        state.has_state = true;
        self.replace(state);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;
    use license_shared::{LicenseStatus, LicenseType};
    use std::time::Instant;

    pub(crate) fn license(revision: i64) -> License {
        let now = Utc::now();
        License {
            id: Uuid::new_v4(),
            number: revision,
            key: LicenseKey::generate(None),
            product_id: Uuid::nil(),
            customer_id: Uuid::nil(),
            edition: None,
            status: LicenseStatus::Active,
            license_type: LicenseType::Perpetual,
            max_activations: None,
            features: serde_json::Map::new(),
            starts_at: None,
            expires_at: None,
            notes: None,
            metadata: serde_json::json!({}),
            active_devices: Vec::new(),
            created_at: now,
            updated_at: now,
            revision,
        }
    }

    #[test]
    fn changes_apply_only_forward() {
        let store = Store::new();
        let mut first = license(5);
        store.apply_deltas(5, vec![Change::License(first.clone())]);
        let older = License {
            status: LicenseStatus::Revoked,
            revision: 4,
            ..first.clone()
        };
        store.apply_deltas(6, vec![Change::License(older)]);
        assert_eq!(
            store.load().license(&first.key).map(|l| l.status),
            Some(LicenseStatus::Active)
        );
        assert_eq!(store.revision(), 6);

        // A newer version with a new key replaces the old key.
        let old_key = first.key.clone();
        first.key = LicenseKey::generate(None);
        first.revision = 7;
        store.apply_deltas(7, vec![Change::License(first.clone())]);
        assert!(store.load().license(&old_key).is_none());
        assert!(store.load().license(&first.key).is_some());

        store.apply_deltas(
            8,
            vec![Change::Deleted {
                kind: EntityKind::License,
                id: first.id,
                revision: 8,
            }],
        );
        assert!(store.load().license(&first.key).is_none());
        assert_eq!(store.load().license_count(), 0);
    }

    #[test]
    fn a_snapshot_replaces_the_state_only_when_finished() {
        let store = Store::new();
        let kept = license(1);
        store.finish_snapshot(
            {
                let mut builder = store.begin_snapshot(Uuid::nil());
                builder.add(vec![Change::License(kept.clone())]);
                builder
            },
            1,
        );
        assert!(store.has_state());
        let mut builder = store.begin_snapshot(Uuid::nil());
        let replacement = license(2);
        builder.add(vec![Change::License(replacement.clone())]);
        assert!(
            store.load().license(&kept.key).is_some(),
            "old state still served"
        );
        drop(builder); // an aborted snapshot changes nothing
        assert!(store.load().license(&kept.key).is_some());
        let mut builder = store.begin_snapshot(Uuid::nil());
        builder.add(vec![Change::License(replacement.clone())]);
        store.finish_snapshot(builder, 2);
        assert!(store.load().license(&kept.key).is_none());
        assert!(store.load().license(&replacement.key).is_some());
    }

    #[test]
    fn applying_one_change_does_not_copy_the_store() {
        let store = Store::new();
        let mut builder = store.begin_snapshot(Uuid::nil());
        builder.add((0..200_000).map(|n| Change::License(license(n))).collect());
        store.finish_snapshot(builder, 200_000);
        let started = Instant::now();
        store.apply_deltas(200_001, vec![Change::License(license(200_001))]);
        let elapsed = started.elapsed();
        println!("one change applied to 200,000 licenses in {elapsed:?}");
        assert!(elapsed.as_millis() < 50, "{elapsed:?}");
        assert_eq!(store.load().license_count(), 200_001);
    }
}
