//! Copy-on-write sharded hash sets: cloning is O(1), changing one entry copies only its shard
//! and the two small tables of shard pointers on its path. [`super::state::State`] keeps every
//! index in one of these.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use foldhash::quality::RandomState;

/// Fan-out of the large indexes (licenses, customers): 64 × 64 = 4,096 shards. With a million
/// licenses a change copies two tables of 64 pointers and a shard of about 250 entries.
pub(super) const LARGE_FANOUT: usize = 64;
/// Fan-out of the product indexes (products are few): 4 × 4 shards.
pub(super) const SMALL_FANOUT: usize = 4;

/// One shard of a [`Sharded`] set, shared by the states that did not change it. Hashed with
/// foldhash (randomly seeded per process): several times cheaper than SipHash on the lookup
/// path, and the entries are the control plane's, never a client's, so flooding is not a risk.
type Shard<E> = Arc<HashSet<E, RandomState>>;
/// A table of shard pointers, shared likewise.
type Table<E> = Arc<[Shard<E>]>;

/// A hash set split into shards that clones share copy-on-write: cloning is O(1), and changing
/// one entry copies only its shard and the two small tables of shard pointers on its path.
#[derive(Debug, Clone)]
pub(super) struct Sharded<E> {
    /// Two levels of `fanout` pointers; the leaves are plain hash sets. Slices rather than
    /// vectors behind the `Arc`s: one pointer hop per level on the lookup path, not two.
    tables: Arc<[Table<E>]>,
    /// `fanout - 1` (the fan-out is a power of two).
    mask: usize,
    /// Picks an entry's shard. Independent of the shards' own hashers, so that the entries of
    /// one shard are not alike in the bits their table uses.
    router: RandomState,
    len: usize,
}

impl<E: Hash + Eq + Clone> Sharded<E> {
    /// An empty set of `fanout` × `fanout` shards (`fanout` a power of two). Every slot shares
    /// one empty table until written to.
    pub(super) fn new(fanout: usize) -> Self {
        debug_assert!(fanout.is_power_of_two());
        let empty = Arc::new(HashSet::default());
        let table: Table<E> = vec![empty; fanout].into();
        Sharded {
            tables: vec![table; fanout].into(),
            mask: fanout - 1,
            router: RandomState::default(),
            len: 0,
        }
    }

    /// The table and the shard of `key`.
    pub(super) fn slot<Q: Hash + ?Sized>(&self, key: &Q) -> (usize, usize) {
        let hash = self.router.hash_one(key);
        // Truncating is fine: any of the hash's bits pick a shard equally well.
        (hash as usize & self.mask, (hash >> 32) as usize & self.mask)
    }

    pub(super) fn get<Q>(&self, key: &Q) -> Option<&E>
    where
        E: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (table, shard) = self.slot(key);
        self.tables.get(table)?.get(shard)?.get(key)
    }

    /// A shard, copied first (with the tables on its path) if another state shares it.
    pub(super) fn shard_mut(
        &mut self,
        (table, shard): (usize, usize),
    ) -> Option<&mut HashSet<E, RandomState>> {
        let table = Arc::make_mut(Arc::make_mut(&mut self.tables).get_mut(table)?);
        Some(Arc::make_mut(table.get_mut(shard)?))
    }

    /// Inserts `entry`, replacing (and returning) an equal one.
    pub(super) fn insert(&mut self, entry: E) -> Option<E> {
        let slot = self.slot(&entry);
        let replaced = self.shard_mut(slot)?.replace(entry);
        if replaced.is_none() {
            self.len += 1;
        }
        replaced
    }

    pub(super) fn remove<Q>(&mut self, key: &Q) -> Option<E>
    where
        E: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Look first: removing nothing must not copy a shard.
        self.get(key)?;
        let slot = self.slot(key);
        let removed = self.shard_mut(slot)?.take(key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &E> {
        self.tables
            .iter()
            .flat_map(|table| table.iter())
            .flat_map(|shard| shard.iter())
    }
}
