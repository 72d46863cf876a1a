//! The domain model every API dialect maps onto (DESIGN §3): products, customers, licenses
//! and their derived status. These are the replicated facts a data plane holds; anything that
//! must never leave the control plane (private notes, tokens) is deliberately absent.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::json::CompactJson;
use crate::key::{KeyPrefix, LicenseKey};

/// Declares a string-backed enum with its wire names, parsing and display.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every wire name, for error messages.
            pub const NAMES: &'static [&'static str] = &[$($wire),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;

            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                match raw {
                    $($wire => Ok(Self::$variant),)+
                    _ => Err(UnknownVariant { expected: Self::NAMES }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A string that is none of an enum's wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected one of: {}", expected.join(", "))]
pub struct UnknownVariant {
    pub expected: &'static [&'static str],
}

wire_enum! {
    /// The status an admin sets. `expired` is never stored: see [`EffectiveStatus`].
    LicenseStatus { Active => "active", Suspended => "suspended", Revoked => "revoked" }
}

wire_enum! {
    /// The status clients see: the stored status, or `expired` once `expires_at` has passed.
    EffectiveStatus {
        Active => "active",
        Expired => "expired",
        Suspended => "suspended",
        Revoked => "revoked",
    }
}

wire_enum! {
    LicenseType {
        Perpetual => "perpetual",
        TimeLimited => "time-limited",
        Subscription => "subscription",
        Consumption => "consumption",
    }
}

wire_enum! {
    /// How a product's licenses are claimed: by key, or by user (LicenseSpring).
    AuthorizationMethod { LicenseKey => "license-key", User => "user" }
}

/// A licensed product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: Uuid,
    /// Short code (LicenseSpring `short_code`, Craft plugin handle); unique.
    pub code: String,
    pub name: String,
    pub authorization_method: AuthorizationMethod,
    /// Prefix of generated license keys.
    #[serde(with = "prefix_serde")]
    pub key_prefix: Option<KeyPrefix>,
    pub metadata: serde_json::Value,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A license owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: Uuid,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub reference: Option<String>,
    pub metadata: serde_json::Value,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A license as replicated to data planes (no private notes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct License {
    pub id: Uuid,
    /// Numeric id (Craft `id`, LicenseSpring `id`).
    pub number: i64,
    pub key: LicenseKey,
    pub product_id: Uuid,
    pub customer_id: Uuid,
    pub edition: Option<String>,
    pub status: LicenseStatus,
    pub license_type: LicenseType,
    /// `None` means unlimited.
    pub max_activations: Option<i32>,
    /// Feature flags and limits, a JSON object (held compactly: see [`CompactJson`]).
    pub features: CompactJson,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    pub metadata: CompactJson,
    /// The devices holding a seat, sorted by device id.
    pub active_devices: Vec<ActiveDevice>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub revision: i64,
}

/// A device holding a seat on a license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveDevice {
    pub device_id: String,
    pub device_name: Option<String>,
    pub activated_at: DateTime<Utc>,
}

impl License {
    /// The status a client sees at `now`: revoked and suspended win over expiry.
    pub fn effective_status(&self, now: DateTime<Utc>) -> EffectiveStatus {
        match self.status {
            LicenseStatus::Revoked => EffectiveStatus::Revoked,
            LicenseStatus::Suspended => EffectiveStatus::Suspended,
            LicenseStatus::Active if self.is_expired(now) => EffectiveStatus::Expired,
            LicenseStatus::Active => EffectiveStatus::Active,
        }
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }

    pub fn has_started(&self, now: DateTime<Utc>) -> bool {
        self.starts_at.is_none_or(|starts_at| starts_at <= now)
    }

    pub fn is_device_active(&self, device_id: &str) -> bool {
        self.active_device(device_id).is_some()
    }

    /// The seat `device_id` holds, if it holds one.
    pub fn active_device(&self, device_id: &str) -> Option<&ActiveDevice> {
        self.active_devices
            .binary_search_by(|active| active.device_id.as_str().cmp(device_id))
            .ok()
            .and_then(|index| self.active_devices.get(index))
    }

    pub fn current_activations(&self) -> usize {
        self.active_devices.len()
    }
}

mod prefix_serde {
    use super::KeyPrefix;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(prefix: &Option<KeyPrefix>, s: S) -> Result<S::Ok, S::Error> {
        match prefix {
            Some(prefix) => s.serialize_some(prefix.as_str()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KeyPrefix>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|raw| KeyPrefix::parse(&raw).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// An active, unlimited, perpetual license created at `now`.
    pub fn license(now: DateTime<Utc>) -> License {
        License {
            id: Uuid::new_v4(),
            number: 1,
            key: LicenseKey::generate(None),
            product_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            edition: None,
            status: LicenseStatus::Active,
            license_type: LicenseType::Perpetual,
            max_activations: None,
            features: CompactJson::empty_object(),
            starts_at: None,
            expires_at: None,
            notes: None,
            metadata: CompactJson::empty_object(),
            active_devices: Vec::new(),
            created_at: now,
            updated_at: now,
            revision: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn expiry_is_derived_and_never_hides_suspension() {
        let now = Utc::now();
        let mut license = fixtures::license(now);
        assert_eq!(license.effective_status(now), EffectiveStatus::Active);
        license.expires_at = Some(now);
        assert_eq!(license.effective_status(now), EffectiveStatus::Expired);
        assert_eq!(
            license.effective_status(now - Duration::seconds(1)),
            EffectiveStatus::Active
        );
        license.status = LicenseStatus::Suspended;
        assert_eq!(license.effective_status(now), EffectiveStatus::Suspended);
        license.status = LicenseStatus::Revoked;
        assert_eq!(license.effective_status(now), EffectiveStatus::Revoked);
    }

    #[test]
    fn wire_names_round_trip() {
        for name in LicenseType::NAMES {
            assert_eq!(name.parse::<LicenseType>().map(|t| t.as_str()), Ok(*name));
        }
        let err = "expired"
            .parse::<LicenseStatus>()
            .expect_err("not settable");
        assert_eq!(
            err.to_string(),
            "expected one of: active, suspended, revoked"
        );
    }
}
