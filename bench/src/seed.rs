//! Seeds licenses straight into PostgreSQL, fast: keys generated in Rust in the product's
//! format ([`LicenseKey::generate`]), rows streamed with `COPY`, all in one transaction.
//!
//! Revisions follow the change feed's rule (migration 0001): the revision counter is updated
//! LAST in the transaction and its row lock is held to commit. The rows are stamped up front
//! with the revisions the counter will hand out (`base + 1 ..= base + n`, one per license, so
//! the feed can page through them like any other writes), and the final
//! `UPDATE revision_counter ... WHERE value = base` proves nobody took a revision meanwhile
//! (if someone did, the transaction is rolled back and tried again). The commit then announces
//! the new revision on the `license_revisions` channel, as every write does, so control planes
//! push it.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use license_shared::LicenseKey;
use sqlx::PgPool;
use uuid::Uuid;

/// Features of every seeded license (three entries, like the scale tests').
pub const FEATURES: &str = r#"{"pro": true, "seats": 10, "tier": "gold"}"#;
/// Rows per `COPY` message.
const COPY_CHUNK: usize = 10_000;

/// What was seeded.
#[derive(Debug)]
pub struct Seeded {
    pub keys: Vec<String>,
    /// The revision the counter stands at afterwards.
    pub revision: i64,
}

/// Inserts `count` active perpetual licenses (edition `pro`, at most 5 devices, [`FEATURES`])
/// of `product` and `customer`; with `device`, each gets that device activated.
pub async fn licenses(
    pool: &PgPool,
    product: Uuid,
    customer: Uuid,
    count: usize,
    device: Option<&str>,
) -> anyhow::Result<Seeded> {
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
    let keys: Vec<String> = (0..count)
        .map(|_| LicenseKey::generate(None).into_string())
        .collect();
    for _attempt in 0..3 {
        let mut tx = pool.begin().await?;
        let base: i64 = sqlx::query_scalar("SELECT value FROM revision_counter")
            .fetch_one(&mut *tx)
            .await?;
        let mut copy = tx
            .copy_in_raw(
                "COPY licenses (id, key, product_id, customer_id, edition, status, license_type, \
                 max_activations, features, revision) FROM STDIN",
            )
            .await?;
        for (chunk, (ids, keys)) in ids
            .chunks(COPY_CHUNK)
            .zip(keys.chunks(COPY_CHUNK))
            .enumerate()
        {
            let mut text = String::with_capacity(ids.len() * 160);
            for (offset, (id, key)) in ids.iter().zip(keys).enumerate() {
                let revision = base + 1 + (chunk * COPY_CHUNK + offset) as i64;
                writeln!(
                    text,
                    "{id}\t{key}\t{product}\t{customer}\tpro\tactive\tperpetual\t5\t{FEATURES}\t{revision}"
                )?;
            }
            copy.send(text.into_bytes()).await?;
        }
        copy.finish().await.context("copying the licenses")?;
        if let Some(device) = device {
            let mut copy = tx
                .copy_in_raw("COPY activations (id, license_id, device_id, device_name) FROM STDIN")
                .await?;
            for ids in ids.chunks(COPY_CHUNK) {
                let mut text = String::with_capacity(ids.len() * 100);
                for id in ids {
                    writeln!(text, "{}\t{id}\t{device}\tbench machine", Uuid::new_v4())?;
                }
                copy.send(text.into_bytes()).await?;
            }
            copy.finish().await.context("copying the activations")?;
        }
        let top = base + count as i64;
        // Last: the counter, whose row lock is held to commit.
        let stamped: Option<i64> = sqlx::query_scalar(
            "UPDATE revision_counter SET value = $2 WHERE value = $1 RETURNING value",
        )
        .bind(base)
        .bind(top)
        .fetch_optional(&mut *tx)
        .await?;
        if stamped != Some(top) {
            tx.rollback().await?;
            continue;
        }
        sqlx::query("SELECT pg_notify('license_revisions', $1)")
            .bind(top.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(Seeded {
            keys,
            revision: top,
        });
    }
    bail!("other writers kept taking revisions while seeding")
}

/// Refreshes the planner's statistics after a bulk load, as an operator would (autovacuum
/// would do it within a minute).
pub async fn analyze(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("ANALYZE licenses").execute(pool).await?;
    sqlx::query("ANALYZE activations").execute(pool).await?;
    Ok(())
}
