//! LicenseSpring API credentials (DESIGN §8): an `api_key` that names the credential in every
//! request and a `shared_key` that signs the request's `Date` header, scoped to some products.
//! Created on the control plane, replicated to data planes over the cluster channel only; the
//! shared key never appears in `Debug` output or a log.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SharedKey(String);

impl SharedKey {
    pub fn new(secret: String) -> Self {
        SharedKey(secret)
    }

    /// The secret itself, to compute or check a signature with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedKey([redacted])")
    }
}

/// One API credential, as replicated to data planes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCredential {
    pub id: Uuid,
    pub name: String,
    /// Public: sent in every request's `Authorization` header.
    pub api_key: String,
    pub shared_key: SharedKey,
    /// The products this credential may be used for.
    pub product_ids: Vec<Uuid>,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
}

impl ApiCredential {
    /// Whether requests signed with this credential may address `product_id`.
    pub fn covers(&self, product_id: Uuid) -> bool {
        self.product_ids.contains(&product_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_key_never_shows_in_debug_output() {
        let credential = ApiCredential {
            id: Uuid::new_v4(),
            name: "desktop app".into(),
            api_key: "public-api-key".into(),
            shared_key: SharedKey::new("very-secret-shared-key".into()),
            product_ids: vec![],
            revision: 1,
            created_at: Utc::now(),
        };
        let debug = format!("{credential:?}");
        assert!(debug.contains("public-api-key"));
        assert!(!debug.contains("very-secret"));
    }
}
