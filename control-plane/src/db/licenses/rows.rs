//! What a license is in the control plane's database layer: the record read back (with its
//! private notes), the fields written, partial changes, listing filters, and how a row
//! becomes a record.

use chrono::{DateTime, Utc};
use license_shared::{
    ActiveDevice, EffectiveStatus, License, LicenseKey, LicenseStatus, LicenseType,
};
use uuid::Uuid;

use crate::db::corrupt;
use crate::db::customers::CustomerFields;
use crate::db::products::NewProduct;

/// A license as the control plane knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenseRecord {
    pub license: License,
    pub private_notes: Option<String>,
}

/// Every editable field of a license, already validated.
#[derive(Debug, Clone)]
pub struct LicenseFields {
    pub product_id: Uuid,
    pub customer_id: Uuid,
    pub edition: Option<String>,
    pub status: LicenseStatus,
    pub license_type: LicenseType,
    pub max_activations: Option<i32>,
    pub features: serde_json::Map<String, serde_json::Value>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    pub private_notes: Option<String>,
    pub metadata: serde_json::Value,
}

/// Fields to change; the outer `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct LicenseChanges {
    pub edition: Option<Option<String>>,
    pub status: Option<LicenseStatus>,
    pub license_type: Option<LicenseType>,
    pub max_activations: Option<Option<i32>>,
    pub features: Option<serde_json::Map<String, serde_json::Value>>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub notes: Option<Option<String>>,
    pub private_notes: Option<Option<String>>,
    pub metadata: Option<serde_json::Value>,
}

impl LicenseChanges {
    /// Whether applying these changes would leave every field as it is.
    pub fn is_empty(&self) -> bool {
        self.edition.is_none()
            && self.status.is_none()
            && self.license_type.is_none()
            && self.max_activations.is_none()
            && self.features.is_none()
            && self.starts_at.is_none()
            && self.expires_at.is_none()
            && self.notes.is_none()
            && self.private_notes.is_none()
            && self.metadata.is_none()
    }

    pub(super) fn apply(self, current: LicenseRecord) -> LicenseFields {
        let license = current.license;
        LicenseFields {
            product_id: license.product_id,
            customer_id: license.customer_id,
            edition: self.edition.unwrap_or(license.edition),
            status: self.status.unwrap_or(license.status),
            license_type: self.license_type.unwrap_or(license.license_type),
            max_activations: self.max_activations.unwrap_or(license.max_activations),
            features: self.features.unwrap_or_else(|| license.features.to_map()),
            starts_at: self.starts_at.unwrap_or(license.starts_at),
            expires_at: self.expires_at.unwrap_or(license.expires_at),
            notes: self.notes.unwrap_or(license.notes),
            private_notes: self.private_notes.unwrap_or(current.private_notes),
            metadata: self.metadata.unwrap_or_else(|| license.metadata.to_value()),
        }
    }
}

/// Which licenses a listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct LicenseFilter {
    pub status: Option<EffectiveStatus>,
    pub product_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
}

/// What replacing a license did.
#[derive(Debug)]
pub enum ReplaceOutcome {
    Replaced(Box<LicenseRecord>),
    /// There is no license with this id; nothing was written.
    NotFound,
    UnknownProduct,
    UnknownCustomer,
}

/// What creating a license did.
#[derive(Debug)]
pub enum InsertOutcome {
    Created(Box<LicenseRecord>),
    UnknownProduct,
    UnknownCustomer,
}

/// A license row as [`SELECT`] reads it.
#[derive(sqlx::FromRow)]
pub(super) struct LicenseRow {
    id: Uuid,
    number: i64,
    key: String,
    product_id: Uuid,
    customer_id: Uuid,
    edition: Option<String>,
    status: String,
    license_type: String,
    max_activations: Option<i32>,
    features: serde_json::Value,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    notes: Option<String>,
    private_notes: Option<String>,
    metadata: serde_json::Value,
    active_devices: serde_json::Value,
    revision: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<LicenseRow> for LicenseRecord {
    type Error = sqlx::Error;

    fn try_from(row: LicenseRow) -> Result<Self, Self::Error> {
        let serde_json::Value::Object(features) = row.features else {
            return Err(corrupt("features", "not a JSON object"));
        };
        let mut active_devices: Vec<ActiveDevice> =
            serde_json::from_value(row.active_devices).map_err(|e| corrupt("active devices", e))?;
        active_devices.sort_unstable_by(|a, b| a.device_id.cmp(&b.device_id));
        Ok(LicenseRecord {
            license: License {
                id: row.id,
                number: row.number,
                key: LicenseKey::parse(&row.key).map_err(|e| corrupt("key", e))?,
                product_id: row.product_id,
                customer_id: row.customer_id,
                edition: row.edition,
                status: row.status.parse().map_err(|e| corrupt("status", e))?,
                license_type: row
                    .license_type
                    .parse()
                    .map_err(|e| corrupt("license_type", e))?,
                max_activations: row.max_activations,
                features: features.into(),
                starts_at: row.starts_at,
                expires_at: row.expires_at,
                notes: row.notes,
                metadata: row.metadata.into(),
                active_devices,
                created_at: row.created_at,
                updated_at: row.updated_at,
                revision: row.revision,
            },
            private_notes: row.private_notes,
        })
    }
}

/// Reads licenses with their active devices; callers add a `WHERE`.
pub(super) const SELECT: &str = "SELECT l.id, l.number, l.key, l.product_id, l.customer_id, l.edition, \
     l.status, l.license_type, l.max_activations, l.features, l.starts_at, l.expires_at, \
     l.notes, l.private_notes, l.metadata, l.revision, l.created_at, l.updated_at, \
     COALESCE((SELECT jsonb_agg(jsonb_build_object('device_id', a.device_id, \
                 'device_name', a.device_name, 'activated_at', a.activated_at)) \
           FROM activations a WHERE a.license_id = l.id AND a.deactivated_at IS NULL), \
          '[]'::jsonb) AS active_devices \
     FROM licenses l";

/// What a new license is called, when the caller decides (Kong's `PUT /licenses/{id}`, an
/// imported document): its id, its key, the imported document to serve back verbatim.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub id: Option<Uuid>,
    pub key: Option<LicenseKey>,
    pub imported_document: Option<String>,
}

/// A product and a customer named by their natural keys (a product's code, a customer's
/// email), as Craft requests and Kong documents name them. Each one given is found, or
/// created when new, inside the license's own transaction, and its id replaces the one in the
/// [`LicenseFields`] written with it; so a refused license leaves no product or customer
/// behind, and concurrent writes naming the same new one create it once.
#[derive(Debug, Clone, Default)]
pub struct NamedOwners {
    /// Replaces `product_id`: the product with this code, or this new product.
    pub product: Option<NewProduct>,
    /// Replaces `customer_id`: the customer with this email, or this new customer.
    pub customer: Option<CustomerFields>,
}
