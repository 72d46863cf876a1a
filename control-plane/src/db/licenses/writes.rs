//! Writes to the licenses table: create, replace, update, delete. Each is one transaction
//! that ends by taking the license's revision (see [`crate::db::revision`]).

use license_shared::protocol::EntityKind;
use license_shared::{License, LicenseKey};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::reads::{fetch_by_id, lock_by_key};
use super::rows::{
    Identity, InsertOutcome, LicenseChanges, LicenseFields, LicenseRecord, NamedOwners,
    ReplaceOutcome,
};
use crate::db::revision;
use crate::db::{ViolationKind, customers, products, usage, violated_constraint};

/// Creates a license with a fresh key carrying the product's prefix.
pub async fn insert(pool: &PgPool, fields: LicenseFields) -> sqlx::Result<InsertOutcome> {
    insert_as(pool, fields, &NamedOwners::default(), Identity::default()).await
}

/// Creates a license, for the product and customer `owners` names (found or created in the
/// license's own transaction) or else those `fields` names; a key or id already taken is a
/// unique violation (409 for the caller), and leaves nothing behind.
pub async fn insert_as(
    pool: &PgPool,
    mut fields: LicenseFields,
    owners: &NamedOwners,
    identity: Identity,
) -> sqlx::Result<InsertOutcome> {
    let mut tx = pool.begin().await?;
    let inserted_owners = match resolve_owners(&mut tx, &mut fields, owners).await? {
        Ok(inserted) => inserted,
        Err(refused) => return Ok(refused.into()),
    };
    let Some(product) = products::fetch_by_id(&mut *tx, fields.product_id).await? else {
        return Ok(InsertOutcome::UnknownProduct);
    };
    let customer_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1)")
            .bind(fields.customer_id)
            .fetch_one(&mut *tx)
            .await?;
    if !customer_exists {
        return Ok(InsertOutcome::UnknownCustomer);
    }
    let id = identity.id.unwrap_or_else(Uuid::new_v4);
    let key = identity
        .key
        .unwrap_or_else(|| LicenseKey::generate(product.key_prefix.as_ref()));
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
        if let Some((ViolationKind::ForeignKey, constraint)) = violated_constraint(error) {
            return Ok(if constraint.contains("product") {
                InsertOutcome::UnknownProduct
            } else {
                InsertOutcome::UnknownCustomer
            });
        }
    }
    inserted?;
    inserted_owners.stamp(&mut tx).await?;
    revision::stamp(&mut tx, EntityKind::License, id).await?;
    let record = fetch_by_id(&mut *tx, id).await?;
    tx.commit().await?;
    record
        .map(|record| InsertOutcome::Created(Box::new(record)))
        .ok_or(sqlx::Error::RowNotFound)
}

/// Replaces every field of license `id` (product and customer included, found or created as
/// in [`insert_as`] when `owners` names them), its key when `key` is given, and its imported
/// document.
pub async fn replace(
    pool: &PgPool,
    id: Uuid,
    mut fields: LicenseFields,
    owners: &NamedOwners,
    key: Option<LicenseKey>,
    imported_document: Option<String>,
) -> sqlx::Result<ReplaceOutcome> {
    let mut tx = pool.begin().await?;
    // Owners first, then the license row: the order every license write takes its locks in.
    let inserted_owners = match resolve_owners(&mut tx, &mut fields, owners).await? {
        Ok(inserted) => inserted,
        Err(refused) => return Ok(refused.into()),
    };
    let locked: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM licenses WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if locked.is_none() {
        return Ok(ReplaceOutcome::NotFound);
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
    inserted_owners.stamp(&mut tx).await?;
    revision::stamp(&mut tx, EntityKind::License, id).await?;
    let record = fetch_by_id(&mut *tx, id).await?;
    tx.commit().await?;
    record
        .map(|record| ReplaceOutcome::Replaced(Box::new(record)))
        .ok_or(sqlx::Error::RowNotFound)
}

/// A product or customer [`NamedOwners`] named that vanished while it was being found.
#[derive(Debug, Clone, Copy)]
enum OwnerGone {
    Product,
    Customer,
}

impl From<OwnerGone> for InsertOutcome {
    fn from(gone: OwnerGone) -> Self {
        match gone {
            OwnerGone::Product => InsertOutcome::UnknownProduct,
            OwnerGone::Customer => InsertOutcome::UnknownCustomer,
        }
    }
}

impl From<OwnerGone> for ReplaceOutcome {
    fn from(gone: OwnerGone) -> Self {
        match gone {
            OwnerGone::Product => ReplaceOutcome::UnknownProduct,
            OwnerGone::Customer => ReplaceOutcome::UnknownCustomer,
        }
    }
}

/// The owners a license's transaction inserted: their revisions are taken after the
/// license's row is written, with the license's own (see [`crate::db::revision`]).
#[derive(Debug, Default)]
struct InsertedOwners {
    product: Option<Uuid>,
    customer: Option<Uuid>,
}

impl InsertedOwners {
    async fn stamp(self, tx: &mut Transaction<'_, Postgres>) -> sqlx::Result<()> {
        if let Some(id) = self.product {
            revision::stamp(tx, EntityKind::Product, id).await?;
        }
        if let Some(id) = self.customer {
            revision::stamp(tx, EntityKind::Customer, id).await?;
        }
        Ok(())
    }
}

/// Finds or inserts the owners `owners` names, in `tx`, and writes their ids into `fields`.
async fn resolve_owners(
    tx: &mut Transaction<'_, Postgres>,
    fields: &mut LicenseFields,
    owners: &NamedOwners,
) -> sqlx::Result<Result<InsertedOwners, OwnerGone>> {
    let mut inserted = InsertedOwners::default();
    if let Some(product) = &owners.product {
        let Some((id, new)) = products::find_or_insert(tx, product).await? else {
            return Ok(Err(OwnerGone::Product));
        };
        fields.product_id = id;
        inserted.product = new.then_some(id);
    }
    if let Some(customer) = &owners.customer {
        let Some((id, new)) = customers::find_or_insert(tx, customer).await? else {
            return Ok(Err(OwnerGone::Customer));
        };
        fields.customer_id = id;
        inserted.customer = new.then_some(id);
    }
    Ok(Ok(inserted))
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
    usage::forget_license(&mut tx, id).await?;
    revision::tombstone(&mut tx, EntityKind::License, id).await?;
    tx.commit().await?;
    Ok(true)
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
    revision::stamp(&mut tx, EntityKind::License, id).await?;
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
    usage::forget_license(&mut tx, id).await?;
    revision::tombstone(&mut tx, EntityKind::License, id).await?;
    tx.commit().await?;
    Ok(true)
}
