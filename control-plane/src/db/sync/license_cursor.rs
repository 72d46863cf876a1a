//! The snapshot's cursor over every license: one sequential scan, read by column position,
//! JSON kept as text. At a million licenses this is most of a snapshot's cost, hence its own
//! row type rather than the one [`crate::db::licenses`] reads with.

use chrono::{DateTime, Utc};
use license_shared::{ActiveDevice, CompactJson, License, LicenseKey};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::db::corrupt;
use crate::db::licenses::LicenseRecord;

/// Opens the snapshot cursor over every license, in the transaction `tx`: one sequential scan,
/// hash-joined with the active devices aggregated once, JSON columns as text (no tree). Read
/// it with [`next_chunk`].
pub(super) async fn open(tx: &mut Transaction<'_, Postgres>) -> sqlx::Result<()> {
    sqlx::query(
        "DECLARE snapshot_licenses NO SCROLL CURSOR FOR \
         SELECT l.id, l.number, l.key, l.product_id, l.customer_id, l.edition, l.status, \
                l.license_type, l.max_activations, l.features::text AS features, l.starts_at, \
                l.expires_at, l.notes, l.metadata::text AS metadata, l.revision, l.created_at, \
                l.updated_at, a.devices::text AS devices \
         FROM licenses l LEFT JOIN ( \
             SELECT license_id, json_agg(json_build_object('device_id', device_id, \
                      'device_name', device_name, 'activated_at', activated_at)) AS devices \
             FROM activations WHERE deactivated_at IS NULL GROUP BY license_id \
         ) a ON a.license_id = l.id",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The next `limit` licenses from the snapshot cursor; empty at the end.
pub(super) async fn next_chunk(
    tx: &mut Transaction<'_, Postgres>,
    limit: usize,
) -> sqlx::Result<Vec<LicenseRecord>> {
    let rows: Vec<LeanLicenseRow> =
        sqlx::query_as(&format!("FETCH FORWARD {limit} FROM snapshot_licenses"))
            .fetch_all(&mut **tx)
            .await?;
    rows.into_iter().map(LeanLicenseRow::into_record).collect()
}

/// A license row of the snapshot cursor, with its JSON columns as text.
struct LeanLicenseRow {
    id: Uuid,
    number: i64,
    key: String,
    product_id: Uuid,
    customer_id: Uuid,
    edition: Option<String>,
    status: String,
    license_type: String,
    max_activations: Option<i32>,
    features: String,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    notes: Option<String>,
    metadata: String,
    revision: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The active devices, a JSON array, or NULL for none.
    devices: Option<String>,
}

/// Read by position, in the cursor's column order: at a million rows, the derived `FromRow`'s
/// look-up of every column by name took 5% of the control plane's snapshot CPU.
impl sqlx::FromRow<'_, sqlx::postgres::PgRow> for LeanLicenseRow {
    fn from_row(row: &sqlx::postgres::PgRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        Ok(LeanLicenseRow {
            id: row.try_get(0)?,
            number: row.try_get(1)?,
            key: row.try_get(2)?,
            product_id: row.try_get(3)?,
            customer_id: row.try_get(4)?,
            edition: row.try_get(5)?,
            status: row.try_get(6)?,
            license_type: row.try_get(7)?,
            max_activations: row.try_get(8)?,
            features: row.try_get(9)?,
            starts_at: row.try_get(10)?,
            expires_at: row.try_get(11)?,
            notes: row.try_get(12)?,
            metadata: row.try_get(13)?,
            revision: row.try_get(14)?,
            created_at: row.try_get(15)?,
            updated_at: row.try_get(16)?,
            devices: row.try_get(17)?,
        })
    }
}

impl LeanLicenseRow {
    fn into_record(self) -> sqlx::Result<LicenseRecord> {
        let mut active_devices: Vec<ActiveDevice> = match &self.devices {
            Some(devices) => {
                serde_json::from_str(devices).map_err(|e| corrupt("active devices", e))?
            }
            None => Vec::new(),
        };
        active_devices.sort_unstable_by(|a, b| a.device_id.cmp(&b.device_id));
        Ok(LicenseRecord {
            license: License {
                id: self.id,
                number: self.number,
                key: LicenseKey::parse(&self.key).map_err(|e| corrupt("key", e))?,
                product_id: self.product_id,
                customer_id: self.customer_id,
                edition: self.edition,
                status: self.status.parse().map_err(|e| corrupt("status", e))?,
                license_type: self
                    .license_type
                    .parse()
                    .map_err(|e| corrupt("license_type", e))?,
                max_activations: self.max_activations,
                features: CompactJson::from_text(self.features)
                    .map_err(|e| corrupt("features", e))?,
                starts_at: self.starts_at,
                expires_at: self.expires_at,
                notes: self.notes,
                metadata: CompactJson::from_text(self.metadata)
                    .map_err(|e| corrupt("metadata", e))?,
                active_devices,
                created_at: self.created_at,
                updated_at: self.updated_at,
                revision: self.revision,
            },
            // Snapshots never carry private notes.
            private_notes: None,
        })
    }
}
