//! What data planes are sent: a consistent snapshot of every replicated entity, streamed in
//! chunks from one REPEATABLE READ transaction, or the full entities behind the change feed
//! after a revision. Private notes stay behind: only [`license_shared::License`] leaves.

use license_shared::protocol::{Change, EntityKind, SNAPSHOT_CHUNK};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::revision::Entity;
use super::{changes, credentials, customers, licenses, products, signing_keys};

/// Which table a snapshot is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    SigningKeys,
    Credentials,
    Products,
    Customers,
    Licenses,
    Done,
}

/// A snapshot being read, consistent as of [`SnapshotReader::revision`].
#[derive(Debug)]
pub struct SnapshotReader {
    tx: Transaction<'static, Postgres>,
    revision: i64,
    phase: Phase,
    after: Uuid,
    /// Licenses, the bulk, are read through a cursor (one sequential scan).
    cursor_open: bool,
}

impl SnapshotReader {
    /// Opens a read-only REPEATABLE READ transaction and notes the last committed revision.
    pub async fn open(pool: &PgPool) -> sqlx::Result<Self> {
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        // The counter's committed value is the newest committed revision: writers hold its
        // row lock until they commit.
        let revision = sqlx::query_scalar("SELECT value FROM revision_counter")
            .fetch_one(&mut *tx)
            .await?;
        Ok(Self {
            tx,
            revision,
            phase: Phase::SigningKeys,
            after: Uuid::nil(),
            cursor_open: false,
        })
    }

    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The next chunk of at most [`SNAPSHOT_CHUNK`] entities; `None` when all were read.
    pub async fn next_chunk(&mut self) -> sqlx::Result<Option<Vec<Change>>> {
        let limit = i64::try_from(SNAPSHOT_CHUNK).unwrap_or(i64::MAX);
        loop {
            let (changes, last): (Vec<Change>, Option<Uuid>) = match self.phase {
                Phase::SigningKeys => {
                    let page = signing_keys::page_after(&mut *self.tx, self.after, limit).await?;
                    let last = page.last().map(|k| k.id);
                    (page.into_iter().map(Change::SigningKey).collect(), last)
                }
                Phase::Credentials => {
                    let page = credentials::page_after(&mut *self.tx, self.after, limit).await?;
                    let last = page.last().map(|c| c.id);
                    (page.into_iter().map(Change::Credential).collect(), last)
                }
                Phase::Products => {
                    let page = products::page_after(&mut *self.tx, self.after, limit).await?;
                    let last = page.last().map(|p| p.id);
                    (page.into_iter().map(Change::Product).collect(), last)
                }
                Phase::Customers => {
                    let page = customers::page_after(&mut *self.tx, self.after, limit).await?;
                    let last = page.last().map(|c| c.id);
                    (page.into_iter().map(Change::Customer).collect(), last)
                }
                Phase::Licenses => {
                    if !self.cursor_open {
                        licenses::open_snapshot_cursor(&mut self.tx).await?;
                        self.cursor_open = true;
                    }
                    let page = licenses::snapshot_chunk(&mut self.tx, SNAPSHOT_CHUNK).await?;
                    let last = page.last().map(|l| l.license.id);
                    (
                        page.into_iter()
                            .map(|record| Change::License(record.license))
                            .collect(),
                        last,
                    )
                }
                Phase::Done => return Ok(None),
            };
            match last {
                Some(last) => {
                    self.after = last;
                    return Ok(Some(changes));
                }
                None => {
                    self.phase = match self.phase {
                        Phase::SigningKeys => Phase::Credentials,
                        Phase::Credentials => Phase::Products,
                        Phase::Products => Phase::Customers,
                        Phase::Customers => Phase::Licenses,
                        Phase::Licenses | Phase::Done => Phase::Done,
                    };
                    self.after = Uuid::nil();
                }
            }
        }
    }
}

/// The entities changed after `after` (at most `limit` feed entries), in revision order, and
/// the highest revision they cover. An entity changed again since the feed was read is sent in
/// its newer version, which is harmless: data planes apply only forward.
pub async fn deltas_after(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> sqlx::Result<Option<(i64, Vec<Change>)>> {
    let feed = changes::after(pool, after, limit).await?;
    let Some(high_water) = feed.last().map(|change| change.revision) else {
        return Ok(None);
    };
    let ids = |entity: Entity| -> Vec<Uuid> {
        feed.iter()
            .filter(|change| change.entity == entity && !change.deleted)
            .map(|change| change.id)
            .collect()
    };
    let mut loaded: Vec<Change> = Vec::with_capacity(feed.len());
    loaded.extend(
        products::fetch_many(pool, &ids(Entity::Product))
            .await?
            .into_iter()
            .map(Change::Product),
    );
    loaded.extend(
        customers::fetch_many(pool, &ids(Entity::Customer))
            .await?
            .into_iter()
            .map(Change::Customer),
    );
    loaded.extend(
        licenses::fetch_many(pool, &ids(Entity::License))
            .await?
            .into_iter()
            .map(|record| Change::License(record.license)),
    );
    loaded.extend(
        credentials::fetch_many(pool, &ids(Entity::Credential))
            .await?
            .into_iter()
            .map(Change::Credential),
    );
    loaded.extend(
        signing_keys::fetch_many(pool, &ids(Entity::SigningKey))
            .await?
            .into_iter()
            .map(Change::SigningKey),
    );
    loaded.extend(
        feed.iter()
            .filter(|change| change.deleted)
            .map(|change| Change::Deleted {
                kind: match change.entity {
                    Entity::Product => EntityKind::Product,
                    Entity::Customer => EntityKind::Customer,
                    Entity::License => EntityKind::License,
                    Entity::Credential => EntityKind::Credential,
                    Entity::SigningKey => EntityKind::SigningKey,
                },
                id: change.id,
                revision: change.revision,
            }),
    );
    loaded.sort_by_key(Change::revision);
    Ok(Some((high_water, loaded)))
}
