//! Customers table. Emails are unique regardless of case.

use chrono::{DateTime, Utc};
use license_shared::Customer;
use license_shared::protocol::EntityKind;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::revision;
use super::{DeleteOutcome, Page};

/// A customer's editable fields, already validated.
#[derive(Debug, Clone, Default)]
pub struct CustomerFields {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub company_name: Option<String>,
    pub reference: Option<String>,
    pub metadata: serde_json::Value,
}

/// Fields to change; the outer `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct CustomerChanges {
    pub email: Option<String>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub reference: Option<Option<String>>,
    pub metadata: Option<serde_json::Value>,
}

impl CustomerChanges {
    fn apply(self, current: Customer) -> CustomerFields {
        CustomerFields {
            email: self.email.unwrap_or(current.email),
            first_name: self.first_name.unwrap_or(current.first_name),
            last_name: self.last_name.unwrap_or(current.last_name),
            company_name: self.company_name.unwrap_or(current.company_name),
            reference: self.reference.unwrap_or(current.reference),
            metadata: self.metadata.unwrap_or(current.metadata),
        }
    }
}

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: Uuid,
    email: String,
    first_name: Option<String>,
    last_name: Option<String>,
    company_name: Option<String>,
    reference: Option<String>,
    metadata: serde_json::Value,
    revision: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<CustomerRow> for Customer {
    fn from(row: CustomerRow) -> Self {
        Customer {
            id: row.id,
            email: row.email,
            first_name: row.first_name,
            last_name: row.last_name,
            company_name: row.company_name,
            reference: row.reference,
            metadata: row.metadata,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "id, email, first_name, last_name, company_name, reference, metadata, \
                       revision, created_at, updated_at";

pub async fn insert(pool: &PgPool, fields: CustomerFields) -> sqlx::Result<Customer> {
    let id = Uuid::new_v4();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO customers \
         (id, email, first_name, last_name, company_name, reference, metadata, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
    )
    .bind(id)
    .bind(&fields.email)
    .bind(&fields.first_name)
    .bind(&fields.last_name)
    .bind(&fields.company_name)
    .bind(&fields.reference)
    .bind(&fields.metadata)
    .execute(&mut *tx)
    .await?;
    revision::stamp(&mut tx, EntityKind::Customer, id).await?;
    let customer = fetch(&mut *tx, id, false).await?;
    tx.commit().await?;
    customer.ok_or(sqlx::Error::RowNotFound)
}

/// The customer with `fields.email` (any case), inserted from `fields` when there is none,
/// inside `tx`, and whether this transaction inserted it; as [`super::products::find_or_insert`]
/// does for products (the caller stamps an inserted customer; a rollback leaves none behind).
/// `None` if the customer found was deleted in between.
pub(crate) async fn find_or_insert(
    tx: &mut Transaction<'_, Postgres>,
    fields: &CustomerFields,
) -> sqlx::Result<Option<(Uuid, bool)>> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO customers \
         (id, email, first_name, last_name, company_name, reference, metadata, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0) \
         ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
    )
    .bind(Uuid::new_v4())
    .bind(&fields.email)
    .bind(&fields.first_name)
    .bind(&fields.last_name)
    .bind(&fields.company_name)
    .bind(&fields.reference)
    .bind(&fields.metadata)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = inserted {
        return Ok(Some((id, true)));
    }
    let existing: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM customers WHERE lower(email) = lower($1)")
            .bind(&fields.email)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(existing.map(|id| (id, false)))
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<Customer>> {
    fetch(pool, id, false).await
}

async fn fetch<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    id: Uuid,
    for_update: bool,
) -> sqlx::Result<Option<Customer>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE id = $1{lock}");
    Ok(sqlx::query_as::<_, CustomerRow>(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await?
        .map(Customer::from))
}

/// A page of customers, oldest first, and the total count.
pub async fn list(pool: &PgPool, page: Page) -> sqlx::Result<(Vec<Customer>, i64)> {
    let sql = format!("SELECT {COLUMNS} FROM customers ORDER BY created_at, id LIMIT $1 OFFSET $2");
    let rows = sqlx::query_as::<_, CustomerRow>(&sql)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(pool)
        .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(pool)
        .await?;
    Ok((rows.into_iter().map(Customer::from).collect(), total))
}

pub async fn update(
    pool: &PgPool,
    id: Uuid,
    changes: CustomerChanges,
) -> sqlx::Result<Option<Customer>> {
    let mut tx = pool.begin().await?;
    let Some(current) = fetch(&mut *tx, id, true).await? else {
        return Ok(None);
    };
    let fields = changes.apply(current);
    sqlx::query(
        "UPDATE customers SET email = $2, first_name = $3, last_name = $4, company_name = $5, \
         reference = $6, metadata = $7, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&fields.email)
    .bind(&fields.first_name)
    .bind(&fields.last_name)
    .bind(&fields.company_name)
    .bind(&fields.reference)
    .bind(&fields.metadata)
    .execute(&mut *tx)
    .await?;
    revision::stamp(&mut tx, EntityKind::Customer, id).await?;
    let customer = fetch(&mut *tx, id, false).await?;
    tx.commit().await?;
    Ok(customer)
}

/// Deletes a customer who owns no license.
pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<DeleteOutcome> {
    let mut tx = pool.begin().await?;
    if fetch(&mut *tx, id, true).await?.is_none() {
        return Ok(DeleteOutcome::NotFound);
    }
    let in_use: i64 = sqlx::query_scalar("SELECT count(*) FROM licenses WHERE customer_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if in_use > 0 {
        return Ok(DeleteOutcome::InUse(in_use));
    }
    sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    revision::tombstone(&mut tx, EntityKind::Customer, id).await?;
    tx.commit().await?;
    Ok(DeleteOutcome::Deleted)
}

/// Customers with the given ids (those that still exist).
pub(crate) async fn fetch_many<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Customer>> {
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE id = ANY($1)");
    Ok(sqlx::query_as::<_, CustomerRow>(&sql)
        .bind(ids)
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(Customer::from)
        .collect())
}

/// Up to `limit` customers with an id above `after`, by id: for streaming snapshots.
pub(crate) async fn page_after<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    after: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Customer>> {
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE id > $1 ORDER BY id LIMIT $2");
    Ok(sqlx::query_as::<_, CustomerRow>(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(Customer::from)
        .collect())
}
