//! Index entries: an entity pointer that hashes, compares and borrows as one of the entity's
//! fields, so that a [`super::sharded::Sharded`] set of them is a map from that field to the
//! entity, and no key is stored twice.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use license_shared::{Customer, License, LicenseKey, Product};
use uuid::Uuid;

/// Declares an index entry: an entity pointer that hashes, compares and borrows as one of the
/// entity's fields, so that a set of them is a map from that field to the entity.
macro_rules! index_entry {
    ($(#[$doc:meta])* $name:ident($entity:ty), $field:ident: $key:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub(super) struct $name(pub(super) Arc<$entity>);

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.$field == other.0.$field
            }
        }

        impl Eq for $name {}

        // Hashes exactly as the field does, as `Borrow` requires.
        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.0.$field.hash(state);
            }
        }

        impl Borrow<$key> for $name {
            fn borrow(&self) -> &$key {
                &self.0.$field
            }
        }
    };
}

index_entry!(
    /// A license in the key index (the hot path).
    LicenseByKey(License), key: LicenseKey
);
index_entry!(
    /// A license in the id index.
    LicenseById(License), id: Uuid
);
index_entry!(
    /// A product in the id index.
    ProductById(Product), id: Uuid
);
index_entry!(
    /// A product in the code index (`String` hashes as `str`, so lookups take a `&str`).
    ProductByCode(Product), code: str
);
index_entry!(
    /// A customer in the id index.
    CustomerById(Customer), id: Uuid
);
