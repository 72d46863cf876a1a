//! The admin tokens table: a token's name, whether it is read-only, and the hash of its
//! secret (never the secret itself; see [`crate::tokens`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::tokens::{TokenHash, generate, hash, hashes_match};

/// A stored token, without its secret.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub id: Uuid,
    pub name: String,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its secret is known.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub record: TokenRecord,
    pub token: String,
}

const COLUMNS: &str = "id, name, read_only, created_at, last_used_at";

pub async fn create(pool: &PgPool, name: &str, read_only: bool) -> sqlx::Result<CreatedToken> {
    let token = generate();
    let sql = format!(
        "INSERT INTO admin_tokens (id, name, token_hash, read_only) VALUES ($1, $2, $3, $4) \
         RETURNING {COLUMNS}"
    );
    let record = sqlx::query_as(&sql)
        .bind(Uuid::new_v4())
        .bind(name)
        .bind(hash(&token).as_slice())
        .bind(read_only)
        .fetch_one(pool)
        .await?;
    Ok(CreatedToken { record, token })
}

pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<TokenRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM admin_tokens ORDER BY created_at, name");
    sqlx::query_as(&sql).fetch_all(pool).await
}

/// Whether a token with this hash exists, and if so whether it is read-only. Records the use.
pub(crate) async fn find_by_hash(
    pool: &PgPool,
    presented: &TokenHash,
) -> sqlx::Result<Option<bool>> {
    let row: Option<(Vec<u8>, bool)> = sqlx::query_as(
        "UPDATE admin_tokens SET last_used_at = now() WHERE token_hash = $1 \
         RETURNING token_hash, read_only",
    )
    .bind(presented.as_slice())
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(stored, read_only)| {
        let stored: TokenHash = stored.try_into().ok()?;
        hashes_match(&stored, presented).then_some(read_only)
    }))
}

pub(crate) async fn revoke(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM admin_tokens WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

pub async fn revoke_by_name(pool: &PgPool, name: &str) -> sqlx::Result<bool> {
    let deleted = sqlx::query("DELETE FROM admin_tokens WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected() > 0)
}
