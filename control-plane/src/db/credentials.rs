//! LicenseSpring API credentials table: created with fresh random keys, listed, deleted; read
//! whole (shared key included) only to replicate them to data planes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use license_shared::credential::{ApiCredential, SharedKey};
use license_shared::protocol::EntityKind;
use sqlx::PgPool;
use uuid::Uuid;

use super::revision;

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: Uuid,
    name: String,
    api_key: String,
    shared_key: String,
    product_ids: Vec<Uuid>,
    revision: i64,
    created_at: DateTime<Utc>,
}

impl From<CredentialRow> for ApiCredential {
    fn from(row: CredentialRow) -> Self {
        ApiCredential {
            id: row.id,
            name: row.name,
            api_key: row.api_key,
            shared_key: SharedKey::new(row.shared_key),
            product_ids: row.product_ids,
            revision: row.revision,
            created_at: row.created_at,
        }
    }
}

const COLUMNS: &str = "id, name, api_key, shared_key, product_ids, revision, created_at";

/// Creates a credential for `product_ids` (already checked to exist) with fresh keys: the api
/// key a UUID (as LicenseSpring's are), the shared key 256 random bits in base64url.
pub(crate) async fn insert(
    pool: &PgPool,
    name: &str,
    product_ids: &[Uuid],
) -> sqlx::Result<ApiCredential> {
    let id = Uuid::new_v4();
    let api_key = Uuid::new_v4().to_string();
    let shared_key = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO api_credentials (id, name, api_key, shared_key, product_ids, revision) \
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(id)
    .bind(name)
    .bind(&api_key)
    .bind(&shared_key)
    .bind(product_ids)
    .execute(&mut *tx)
    .await?;
    revision::stamp(&mut tx, EntityKind::Credential, id).await?;
    let credential = fetch_many(&mut *tx, &[id]).await?.pop();
    tx.commit().await?;
    credential.ok_or(sqlx::Error::RowNotFound)
}

/// Every credential, oldest first.
pub(crate) async fn list(pool: &PgPool) -> sqlx::Result<Vec<ApiCredential>> {
    let sql = format!("SELECT {COLUMNS} FROM api_credentials ORDER BY created_at, id");
    Ok(sqlx::query_as::<_, CredentialRow>(&sql)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(ApiCredential::from)
        .collect())
}

/// Deletes a credential; data planes stop accepting it as the tombstone reaches them.
/// Returns whether it existed.
pub(crate) async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM api_credentials WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    revision::tombstone(&mut tx, EntityKind::Credential, id).await?;
    tx.commit().await?;
    Ok(true)
}

/// Credentials with the given ids (those that still exist).
pub(crate) async fn fetch_many<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    ids: &[Uuid],
) -> sqlx::Result<Vec<ApiCredential>> {
    let sql = format!("SELECT {COLUMNS} FROM api_credentials WHERE id = ANY($1)");
    Ok(sqlx::query_as::<_, CredentialRow>(&sql)
        .bind(ids)
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(ApiCredential::from)
        .collect())
}

/// Up to `limit` credentials with an id above `after`, by id: for streaming snapshots.
pub(crate) async fn page_after<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    after: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<ApiCredential>> {
    let sql = format!("SELECT {COLUMNS} FROM api_credentials WHERE id > $1 ORDER BY id LIMIT $2");
    Ok(sqlx::query_as::<_, CredentialRow>(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(ApiCredential::from)
        .collect())
}
