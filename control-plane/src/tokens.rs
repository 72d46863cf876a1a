//! Admin API tokens: generated with 256 bits of randomness, shown once, stored as SHA-256
//! hashes (a fast hash is enough for secrets this long), looked up by hash and compared in
//! constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Prefix of every token we issue, so leaked tokens are easy to recognise and scan for.
const TOKEN_PREFIX: &str = "lsat_";

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

/// The SHA-256 of a presented token.
pub type TokenHash = [u8; 32];

pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time equality of two hashes.
pub fn hashes_match(a: &TokenHash, b: &TokenHash) -> bool {
    a.ct_eq(b).into()
}

fn generate() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret))
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
pub async fn find_by_hash(pool: &PgPool, presented: &TokenHash) -> sqlx::Result<Option<bool>> {
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

pub async fn revoke(pool: &PgPool, id: Uuid) -> sqlx::Result<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_prefixed_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert!(hashes_match(&hash(&a), &hash(&a)));
        assert!(!hashes_match(&hash(&a), &hash(&b)));
    }
}
