//! Products table.

use chrono::{DateTime, Utc};
use license_shared::protocol::EntityKind;
use license_shared::{AuthorizationMethod, KeyPrefix, Product};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::revision;
use super::{DeleteOutcome, Page, corrupt};

/// A product to create, already validated.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub code: String,
    pub name: String,
    pub authorization_method: AuthorizationMethod,
    pub key_prefix: Option<KeyPrefix>,
    pub metadata: serde_json::Value,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductChanges {
    pub code: Option<String>,
    pub name: Option<String>,
    pub authorization_method: Option<AuthorizationMethod>,
    pub key_prefix: Option<Option<KeyPrefix>>,
    pub metadata: Option<serde_json::Value>,
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: Uuid,
    code: String,
    name: String,
    authorization_method: String,
    key_prefix: Option<String>,
    metadata: serde_json::Value,
    revision: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<ProductRow> for Product {
    type Error = sqlx::Error;

    fn try_from(row: ProductRow) -> Result<Self, Self::Error> {
        Ok(Product {
            id: row.id,
            code: row.code,
            name: row.name,
            authorization_method: row
                .authorization_method
                .parse()
                .map_err(|e| corrupt("authorization_method", e))?,
            key_prefix: row
                .key_prefix
                .map(|raw| KeyPrefix::parse(&raw).map_err(|e| corrupt("key_prefix", e)))
                .transpose()?,
            metadata: row.metadata,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str = "id, code, name, authorization_method, key_prefix, metadata, revision, \
                       created_at, updated_at";

pub async fn insert(pool: &PgPool, new: NewProduct) -> sqlx::Result<Product> {
    let id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO products (id, code, name, authorization_method, key_prefix, metadata, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, 0)",
    )
    .bind(id)
    .bind(&new.code)
    .bind(&new.name)
    .bind(new.authorization_method.as_str())
    .bind(new.key_prefix.as_ref().map(KeyPrefix::as_str))
    .bind(&new.metadata)
    .execute(&mut *tx)
    .await?;
    revision::stamp(&mut tx, EntityKind::Product, id).await?;
    let product = fetch(&mut *tx, id, false).await?;
    tx.commit().await?;
    product.ok_or(sqlx::Error::RowNotFound)
}

/// The product with `new.code`, inserted from `new` when there is none, inside `tx`, and
/// whether this transaction inserted it. The caller takes an inserted product's revision
/// ([`revision::stamp`]) after its transaction's other rows are written, and a rollback
/// (the license it was for refused) leaves no product behind. A concurrent transaction
/// inserting the same code makes this wait for it: once it commits, the second statement
/// (a fresh READ COMMITTED snapshot) finds its product. `None` if that product was deleted
/// in between.
pub(crate) async fn find_or_insert(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewProduct,
) -> sqlx::Result<Option<(Uuid, bool)>> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO products (id, code, name, authorization_method, key_prefix, metadata, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (code) DO NOTHING RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(&new.code)
    .bind(&new.name)
    .bind(new.authorization_method.as_str())
    .bind(new.key_prefix.as_ref().map(KeyPrefix::as_str))
    .bind(&new.metadata)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = inserted {
        return Ok(Some((id, true)));
    }
    let existing: Option<Uuid> = sqlx::query_scalar("SELECT id FROM products WHERE code = $1")
        .bind(&new.code)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(existing.map(|id| (id, false)))
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Product>> {
    fetch(pool, id, false).await
}

pub async fn get_by_code(pool: &PgPool, code: &str) -> sqlx::Result<Option<Product>> {
    let sql = format!("SELECT {COLUMNS} FROM products WHERE code = $1");
    sqlx::query_as::<_, ProductRow>(&sql)
        .bind(code)
        .fetch_optional(pool)
        .await?
        .map(Product::try_from)
        .transpose()
}

/// The product `id`, read by `executor` (e.g. inside a license's transaction).
pub(crate) async fn fetch_by_id<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: Uuid,
) -> sqlx::Result<Option<Product>> {
    fetch(executor, id, false).await
}

async fn fetch<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: Uuid,
    for_update: bool,
) -> sqlx::Result<Option<Product>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1{lock}");
    sqlx::query_as::<_, ProductRow>(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await?
        .map(Product::try_from)
        .transpose()
}

/// A page of products, oldest first, and the total count.
pub async fn list(pool: &PgPool, page: Page) -> sqlx::Result<(Vec<Product>, i64)> {
    let sql = format!("SELECT {COLUMNS} FROM products ORDER BY created_at, id LIMIT $1 OFFSET $2");
    let rows = sqlx::query_as::<_, ProductRow>(&sql)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(pool)
        .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM products")
        .fetch_one(pool)
        .await?;
    let products = rows
        .into_iter()
        .map(Product::try_from)
        .collect::<Result<_, _>>()?;
    Ok((products, total))
}

pub async fn update(
    pool: &PgPool,
    id: Uuid,
    changes: ProductChanges,
) -> sqlx::Result<Option<Product>> {
    let mut tx = pool.begin().await?;
    let Some(current) = fetch(&mut *tx, id, true).await? else {
        return Ok(None);
    };
    let key_prefix = changes.key_prefix.unwrap_or(current.key_prefix);
    sqlx::query(
        "UPDATE products SET code = $2, name = $3, authorization_method = $4, key_prefix = $5, \
         metadata = $6, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(changes.code.unwrap_or(current.code))
    .bind(changes.name.unwrap_or(current.name))
    .bind(
        changes
            .authorization_method
            .unwrap_or(current.authorization_method)
            .as_str(),
    )
    .bind(key_prefix.as_ref().map(KeyPrefix::as_str))
    .bind(changes.metadata.unwrap_or(current.metadata))
    .execute(&mut *tx)
    .await?;
    revision::stamp(&mut tx, EntityKind::Product, id).await?;
    let product = fetch(&mut *tx, id, false).await?;
    tx.commit().await?;
    Ok(product)
}

/// Deletes a product no license uses.
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<DeleteOutcome> {
    let mut tx = pool.begin().await?;
    if fetch(&mut *tx, id, true).await?.is_none() {
        return Ok(DeleteOutcome::NotFound);
    }
    let in_use: i64 = sqlx::query_scalar("SELECT count(*) FROM licenses WHERE product_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if in_use > 0 {
        return Ok(DeleteOutcome::InUse(in_use));
    }
    sqlx::query("DELETE FROM products WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    revision::tombstone(&mut tx, EntityKind::Product, id).await?;
    tx.commit().await?;
    Ok(DeleteOutcome::Deleted)
}

/// Products with the given ids (those that still exist).
pub(crate) async fn fetch_many<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Product>> {
    let sql = format!("SELECT {COLUMNS} FROM products WHERE id = ANY($1)");
    sqlx::query_as::<_, ProductRow>(&sql)
        .bind(ids)
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(Product::try_from)
        .collect()
}

/// Up to `limit` products with an id above `after`, by id: for streaming snapshots.
pub(crate) async fn page_after<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    after: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Product>> {
    let sql = format!("SELECT {COLUMNS} FROM products WHERE id > $1 ORDER BY id LIMIT $2");
    sqlx::query_as::<_, ProductRow>(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(Product::try_from)
        .collect()
}

/// The numeric ids (Craft's `pluginId`) of these products.
pub(crate) async fn numbers(
    pool: &PgPool,
    ids: &[Uuid],
) -> sqlx::Result<std::collections::HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, i64)> =
        sqlx::query_as("SELECT id, number FROM products WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}
