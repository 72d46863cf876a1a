//! Licenses table. A license row read here carries its active device ids, the replicated fact
//! [`license_shared::evaluate`] needs, and its private notes, which never leave the control
//! plane (hence [`LicenseRecord`] rather than a bare [`License`]).

use chrono::{DateTime, Utc};
use license_shared::{
    ActiveDevice, CompactJson, EffectiveStatus, License, LicenseKey, LicenseStatus, LicenseType,
};
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use super::revision::{self, Entity};
use super::{Page, corrupt, products};

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

    fn apply(self, current: LicenseRecord) -> LicenseFields {
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

/// What creating a license did.
#[derive(Debug)]
pub enum InsertOutcome {
    Created(Box<LicenseRecord>),
    UnknownProduct,
    UnknownCustomer,
}

#[derive(sqlx::FromRow)]
struct LicenseRow {
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

const SELECT: &str = "SELECT l.id, l.number, l.key, l.product_id, l.customer_id, l.edition, \
     l.status, l.license_type, l.max_activations, l.features, l.starts_at, l.expires_at, \
     l.notes, l.private_notes, l.metadata, l.revision, l.created_at, l.updated_at, \
     COALESCE((SELECT jsonb_agg(jsonb_build_object('device_id', a.device_id, \
                 'device_name', a.device_name, 'activated_at', a.activated_at)) \
           FROM activations a WHERE a.license_id = l.id AND a.deactivated_at IS NULL), \
          '[]'::jsonb) AS active_devices \
     FROM licenses l";

/// Creates a license with a fresh key carrying the product's prefix.
pub async fn insert(pool: &PgPool, fields: LicenseFields) -> sqlx::Result<InsertOutcome> {
    insert_as(pool, fields, Identity::default()).await
}

/// What a new license is called, when the caller decides (Kong's `PUT /licenses/{id}`, an
/// imported document): its id, its key, the imported document to serve back verbatim.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub id: Option<Uuid>,
    pub key: Option<LicenseKey>,
    pub imported_document: Option<String>,
}

/// Creates a license; a key or id already taken is a unique violation (409 for the caller).
pub async fn insert_as(
    pool: &PgPool,
    fields: LicenseFields,
    identity: Identity,
) -> sqlx::Result<InsertOutcome> {
    let Some(product) = products::get(pool, fields.product_id).await? else {
        return Ok(InsertOutcome::UnknownProduct);
    };
    let customer_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)")
            .bind(fields.customer_id)
            .fetch_one(pool)
            .await?;
    if !customer_exists {
        return Ok(InsertOutcome::UnknownCustomer);
    }
    let id = identity.id.unwrap_or_else(Uuid::new_v4);
    let key = identity
        .key
        .unwrap_or_else(|| LicenseKey::generate(product.key_prefix.as_ref()));
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO licenses (id, key, product_id, customer_id, edition, status, license_type, \
         max_activations, features, starts_at, expires_at, notes, private_notes, metadata, \
         imported_document, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0)",
    )
    .bind(id)
    .bind(key.as_str())
    .bind(fields.product_id)
    .bind(fields.customer_id)
    .bind(&fields.edition)
    .bind(fields.status.as_str())
    .bind(fields.license_type.as_str())
    .bind(fields.max_activations)
    .bind(serde_json::Value::Object(fields.features))
    .bind(fields.starts_at)
    .bind(fields.expires_at)
    .bind(&fields.notes)
    .bind(&fields.private_notes)
    .bind(&fields.metadata)
    .bind(&identity.imported_document)
    .execute(&mut *tx)
    .await;
    // The product or customer may have been deleted since we looked.
    if let Err(error) = &inserted {
        if let Some((super::ViolationKind::ForeignKey, constraint)) =
            super::violated_constraint(error)
        {
            return Ok(if constraint.contains("product") {
                InsertOutcome::UnknownProduct
            } else {
                InsertOutcome::UnknownCustomer
            });
        }
    }
    inserted?;
    revision::stamp(&mut tx, Entity::License, id).await?;
    let record = fetch_by_id(&mut *tx, id).await?;
    tx.commit().await?;
    record
        .map(|record| InsertOutcome::Created(Box::new(record)))
        .ok_or(sqlx::Error::RowNotFound)
}

/// Replaces every field of license `id` (product and customer included), its key when `key`
/// is given, and its imported document. `None` when there is no such license.
pub async fn replace(
    pool: &PgPool,
    id: Uuid,
    fields: LicenseFields,
    key: Option<LicenseKey>,
    imported_document: Option<String>,
) -> sqlx::Result<Option<LicenseRecord>> {
    let mut tx = pool.begin().await?;
    let locked: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM licenses WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if locked.is_none() {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE licenses SET product_id = $2, customer_id = $3, edition = $4, status = $5, \
         license_type = $6, max_activations = $7, features = $8, starts_at = $9, \
         expires_at = $10, notes = $11, private_notes = $12, metadata = $13, \
         imported_document = $14, key = COALESCE($15, key), updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(fields.product_id)
    .bind(fields.customer_id)
    .bind(&fields.edition)
    .bind(fields.status.as_str())
    .bind(fields.license_type.as_str())
    .bind(fields.max_activations)
    .bind(serde_json::Value::Object(fields.features))
    .bind(fields.starts_at)
    .bind(fields.expires_at)
    .bind(&fields.notes)
    .bind(&fields.private_notes)
    .bind(&fields.metadata)
    .bind(&imported_document)
    .bind(key.as_ref().map(LicenseKey::as_str))
    .execute(&mut *tx)
    .await?;
    revision::stamp(&mut tx, Entity::License, id).await?;
    let record = fetch_by_id(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(record)
}

/// Deletes license `id` and its activations. Returns whether it existed.
pub async fn delete_by_id(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM licenses WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    super::usage::forget_license(&mut tx, id).await?;
    revision::tombstone(&mut tx, Entity::License, id).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn get_by_id(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<LicenseRecord>> {
    fetch_by_id(pool, id).await
}

/// Up to `limit` licenses numbered above `after`, by number: keyset pagination.
pub async fn page_by_number(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<LicenseRecord>> {
    let sql = format!("{SELECT} WHERE l.number > $1 ORDER BY l.number LIMIT $2");
    sqlx::query_as::<_, LicenseRow>(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(LicenseRecord::try_from)
        .collect()
}

/// The imported documents of these licenses (those that have one).
pub async fn imported_documents(
    pool: &PgPool,
    ids: &[Uuid],
) -> sqlx::Result<std::collections::HashMap<Uuid, String>> {
    let rows: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, imported_document FROM licenses \
         WHERE id = ANY($1) AND imported_document IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

pub async fn get_by_key(pool: &PgPool, key: &LicenseKey) -> sqlx::Result<Option<LicenseRecord>> {
    fetch_by_key(pool, key).await
}

/// Reads a license by key.
pub(crate) async fn fetch_by_key<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    key: &LicenseKey,
) -> sqlx::Result<Option<LicenseRecord>> {
    let sql = format!("{SELECT} WHERE l.key = $1");
    sqlx::query_as::<_, LicenseRow>(&sql)
        .bind(key.as_str())
        .fetch_optional(executor)
        .await?
        .map(LicenseRecord::try_from)
        .transpose()
}

/// Locks the license row until the transaction ends; returns its id, or `None` if there is
/// no such license. Read the license in a later statement, which sees the state after the
/// lock was granted.
pub(crate) async fn lock_by_key(
    tx: &mut Transaction<'_, Postgres>,
    key: &LicenseKey,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT id FROM licenses WHERE key = $1 FOR UPDATE")
        .bind(key.as_str())
        .fetch_optional(&mut **tx)
        .await
}

pub(crate) async fn fetch_by_id<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: Uuid,
) -> sqlx::Result<Option<LicenseRecord>> {
    let sql = format!("{SELECT} WHERE l.id = $1");
    sqlx::query_as::<_, LicenseRow>(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await?
        .map(LicenseRecord::try_from)
        .transpose()
}

/// A page of licenses matching `filter`, oldest first, and how many match in all.
pub async fn list(
    pool: &PgPool,
    filter: LicenseFilter,
    page: Page,
) -> sqlx::Result<(Vec<LicenseRecord>, i64)> {
    let mut query = QueryBuilder::new(SELECT);
    push_filter(&mut query, filter);
    query
        .push(" ORDER BY l.number LIMIT ")
        .push_bind(page.limit())
        .push(" OFFSET ")
        .push_bind(page.offset());
    let rows: Vec<LicenseRow> = query.build_query_as().fetch_all(pool).await?;

    let mut count = QueryBuilder::new("SELECT count(*) FROM licenses l");
    push_filter(&mut count, filter);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;

    let records = rows
        .into_iter()
        .map(LicenseRecord::try_from)
        .collect::<Result<_, _>>()?;
    Ok((records, total))
}

fn push_filter(query: &mut QueryBuilder<'_, Postgres>, filter: LicenseFilter) {
    query.push(" WHERE true");
    match filter.status {
        None => {}
        Some(EffectiveStatus::Active) => {
            query.push(
                " AND l.status = 'active' AND (l.expires_at IS NULL OR l.expires_at > now())",
            );
        }
        Some(EffectiveStatus::Expired) => {
            query.push(" AND l.status = 'active' AND l.expires_at <= now()");
        }
        Some(status) => {
            query.push(" AND l.status = ").push_bind(status.as_str());
        }
    }
    if let Some(product_id) = filter.product_id {
        query.push(" AND l.product_id = ").push_bind(product_id);
    }
    if let Some(customer_id) = filter.customer_id {
        query.push(" AND l.customer_id = ").push_bind(customer_id);
    }
}

/// Applies `changes` to the license with this key. When they change a fact a document states
/// (anything but the notes), the facts are now ours, not an issuer's: any imported document is
/// dropped, so Kong's `/licenses` serves the document this control plane signs from the new
/// facts instead of the issuer's stale one.
pub async fn update(
    pool: &PgPool,
    key: &LicenseKey,
    changes: LicenseChanges,
) -> sqlx::Result<Option<LicenseRecord>> {
    let mut tx = pool.begin().await?;
    let Some(id) = lock_by_key(&mut tx, key).await? else {
        return Ok(None);
    };
    let current = fetch_by_id(&mut *tx, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let before = current.license.clone();
    let fields = changes.apply(current);
    let drop_imported = changes_document_facts(&before, &fields);
    sqlx::query(
        "UPDATE licenses SET edition = $2, status = $3, license_type = $4, max_activations = $5, \
         features = $6, starts_at = $7, expires_at = $8, notes = $9, private_notes = $10, \
         metadata = $11, \
         imported_document = CASE WHEN $12 THEN NULL ELSE imported_document END, \
         updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&fields.edition)
    .bind(fields.status.as_str())
    .bind(fields.license_type.as_str())
    .bind(fields.max_activations)
    .bind(serde_json::Value::Object(fields.features))
    .bind(fields.starts_at)
    .bind(fields.expires_at)
    .bind(&fields.notes)
    .bind(&fields.private_notes)
    .bind(&fields.metadata)
    .bind(drop_imported)
    .execute(&mut *tx)
    .await?;
    revision::stamp(&mut tx, Entity::License, id).await?;
    let record = fetch_by_id(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(record)
}

/// Whether `fields` change a fact of `license` that a license document states: everything
/// but the notes (metadata included, where an imported Kong payload keeps its other fields).
fn changes_document_facts(license: &License, fields: &LicenseFields) -> bool {
    license.edition != fields.edition
        || license.status != fields.status
        || license.license_type != fields.license_type
        || license.max_activations != fields.max_activations
        || license.features.to_map() != fields.features
        || license.starts_at != fields.starts_at
        || license.expires_at != fields.expires_at
        || license.metadata.to_value() != fields.metadata
}

/// Deletes a license and its activations. Returns whether it existed.
pub async fn delete(pool: &PgPool, key: &LicenseKey) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let id: Option<Uuid> = sqlx::query_scalar("DELETE FROM licenses WHERE key = $1 RETURNING id")
        .bind(key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(id) = id else {
        return Ok(false);
    };
    super::usage::forget_license(&mut tx, id).await?;
    revision::tombstone(&mut tx, Entity::License, id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Licenses with the given ids (those that still exist).
pub(crate) async fn fetch_many<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    ids: &[Uuid],
) -> sqlx::Result<Vec<LicenseRecord>> {
    let sql = format!("{SELECT} WHERE l.id = ANY($1)");
    sqlx::query_as::<_, LicenseRow>(&sql)
        .bind(ids)
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(LicenseRecord::try_from)
        .collect()
}

/// Opens the snapshot cursor over every license, in the transaction `tx`: one sequential scan,
/// hash-joined with the active devices aggregated once, JSON columns as text (no tree). Read
/// it with [`snapshot_chunk`].
pub(crate) async fn open_snapshot_cursor(tx: &mut Transaction<'_, Postgres>) -> sqlx::Result<()> {
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
pub(crate) async fn snapshot_chunk(
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
