//! Reads of the licenses table: by id, by key, by number (Kong's keyset pages), filtered
//! listings, and the imported documents Kong serves back.

use license_shared::{EffectiveStatus, LicenseKey};
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};
use uuid::Uuid;

use super::rows::{LicenseFilter, LicenseRecord, LicenseRow, SELECT};
use crate::db::Page;

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
async fn fetch_by_key<'e>(
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
