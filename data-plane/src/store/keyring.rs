//! The secrets a data plane holds beside its licenses: LicenseSpring API credentials (looked up
//! by api key on every LicenseSpring request) and the cluster's signing keys (the active one
//! signs responses; all are published as the JWKS). They are few, so a change copies the whole
//! keyring; it is replicated like any entity, only forward, and cached with the state.

use std::collections::HashMap;
use std::sync::Arc;

use license_shared::credential::ApiCredential;
use license_shared::signing::{ClusterKey, Jwks};
use uuid::Uuid;

/// Credentials and signing keys, as of one state.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    credentials: HashMap<Uuid, Arc<ApiCredential>>,
    by_api_key: HashMap<String, Arc<ApiCredential>>,
    signing_keys: HashMap<Uuid, Arc<ClusterKey>>,
}

impl Keyring {
    /// The credential whose api key this is.
    pub fn credential(&self, api_key: &str) -> Option<&ApiCredential> {
        self.by_api_key.get(api_key).map(Arc::as_ref)
    }

    /// Every credential, in no particular order.
    pub fn credentials(&self) -> impl Iterator<Item = &ApiCredential> {
        self.credentials.values().map(Arc::as_ref)
    }

    /// The key that signs responses: the active one (the newest, should two claim it).
    pub fn active_signing_key(&self) -> Option<&ClusterKey> {
        self.signing_keys
            .values()
            .filter(|key| key.active)
            .max_by_key(|key| key.revision)
            .map(Arc::as_ref)
    }

    /// Every signing key, in no particular order.
    pub fn signing_keys(&self) -> impl Iterator<Item = &ClusterKey> {
        self.signing_keys.values().map(Arc::as_ref)
    }

    /// The public keys, active first.
    pub fn jwks(&self) -> Jwks {
        let mut keys: Vec<&ClusterKey> = self.signing_keys().collect();
        keys.sort_by_key(|key| (!key.active, std::cmp::Reverse(key.revision)));
        Jwks {
            keys: keys.into_iter().map(ClusterKey::jwk).collect(),
        }
    }

    pub fn credential_count(&self) -> usize {
        self.credentials.len()
    }

    pub fn signing_key_count(&self) -> usize {
        self.signing_keys.len()
    }

    /// Stores a credential unless the stored one is as new; says whether it applied.
    pub(crate) fn upsert_credential(&mut self, credential: ApiCredential) -> bool {
        if let Some(stored) = self.credentials.get(&credential.id) {
            if stored.revision >= credential.revision {
                return false;
            }
            let old_key = stored.api_key.clone();
            self.by_api_key.remove(&old_key);
        }
        let credential = Arc::new(credential);
        self.by_api_key
            .insert(credential.api_key.clone(), Arc::clone(&credential));
        self.credentials.insert(credential.id, credential);
        true
    }

    pub(crate) fn delete_credential(&mut self, id: Uuid, revision: i64) -> bool {
        let Some(stored) = self.credentials.get(&id) else {
            return false;
        };
        if stored.revision > revision {
            return false;
        }
        let api_key = stored.api_key.clone();
        self.by_api_key.remove(&api_key);
        self.credentials.remove(&id);
        true
    }

    pub(crate) fn upsert_signing_key(&mut self, key: ClusterKey) -> bool {
        if self
            .signing_keys
            .get(&key.id)
            .is_some_and(|stored| stored.revision >= key.revision)
        {
            return false;
        }
        self.signing_keys.insert(key.id, Arc::new(key));
        true
    }

    pub(crate) fn delete_signing_key(&mut self, id: Uuid, revision: i64) -> bool {
        if self
            .signing_keys
            .get(&id)
            .is_none_or(|stored| stored.revision > revision)
        {
            return false;
        }
        self.signing_keys.remove(&id);
        true
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use license_shared::credential::SharedKey;
    use license_shared::signing;

    use super::*;

    fn credential(id: Uuid, api_key: &str, revision: i64) -> ApiCredential {
        ApiCredential {
            id,
            name: "app".into(),
            api_key: api_key.into(),
            shared_key: SharedKey::new("secret".into()),
            product_ids: vec![],
            revision,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn credentials_apply_forward_and_follow_their_api_key() {
        let mut keyring = Keyring::default();
        let id = Uuid::new_v4();
        assert!(keyring.upsert_credential(credential(id, "a", 2)));
        assert!(!keyring.upsert_credential(credential(id, "b", 1)));
        assert!(keyring.credential("a").is_some());
        assert!(keyring.upsert_credential(credential(id, "b", 3)));
        assert!(keyring.credential("a").is_none());
        assert!(keyring.credential("b").is_some());
        assert!(!keyring.delete_credential(id, 2), "older tombstone");
        assert!(keyring.delete_credential(id, 4));
        assert!(keyring.credential("b").is_none());
    }

    #[test]
    fn the_newest_active_key_signs_and_every_key_is_published() {
        let mut keyring = Keyring::default();
        let old = ClusterKey::new(Uuid::new_v4(), signing::generate_key(), false, 5);
        let new = ClusterKey::new(Uuid::new_v4(), signing::generate_key(), true, 6);
        assert!(keyring.active_signing_key().is_none());
        keyring.upsert_signing_key(old.clone());
        keyring.upsert_signing_key(new.clone());
        assert_eq!(keyring.active_signing_key().map(|k| &k.kid), Some(&new.kid));
        let jwks = keyring.jwks();
        assert_eq!(jwks.keys.len(), 2);
        assert_eq!(jwks.keys[0].kid, new.kid);
    }
}
