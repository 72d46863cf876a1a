//! What data planes are sent: a consistent snapshot of every replicated entity, streamed in
//! chunks from one REPEATABLE READ transaction ([`snapshot`]), or the full entities behind the
//! change feed after a revision (here). Private notes stay behind: only
//! [`license_shared::License`] leaves.

mod license_cursor;
mod snapshot;

pub(crate) use snapshot::SnapshotReader;

use license_shared::protocol::{Change, EntityKind};
use sqlx::PgPool;
use uuid::Uuid;

use super::{changes, credentials, customers, licenses, products, signing_keys};

/// Changes read from the feed, ready to send.
#[derive(Debug)]
pub(crate) struct DeltaBatch {
    /// The highest revision the batch covers.
    pub revision: i64,
    /// The changed entities (their current versions) and tombstones, in revision order.
    pub changes: Vec<Change>,
    /// The feed held fewer entries than the limit: nothing more had committed when it was
    /// read, so there is no need to ask again until the next revision is announced.
    pub last: bool,
}

/// The entities changed after `after` (at most `limit` feed entries), in revision order, and
/// the highest revision they cover. An entity changed again since the feed was read is sent in
/// its newer version, which is harmless: data planes apply only forward.
pub(crate) async fn deltas_after(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> sqlx::Result<Option<DeltaBatch>> {
    let feed = changes::after(pool, after, limit).await?;
    let Some(high_water) = feed.last().map(|change| change.revision) else {
        return Ok(None);
    };
    let ids = |entity: EntityKind| -> Vec<Uuid> {
        feed.iter()
            .filter(|change| change.entity == entity && !change.deleted)
            .map(|change| change.id)
            .collect()
    };
    // One query per kind of entity that changed (a single change is one query, not five).
    let mut loaded: Vec<Change> = Vec::with_capacity(feed.len());
    let products = ids(EntityKind::Product);
    if !products.is_empty() {
        let found = products::fetch_many(pool, &products).await?;
        loaded.extend(found.into_iter().map(Change::Product));
    }
    let customers = ids(EntityKind::Customer);
    if !customers.is_empty() {
        let found = customers::fetch_many(pool, &customers).await?;
        loaded.extend(found.into_iter().map(Change::Customer));
    }
    let licenses = ids(EntityKind::License);
    if !licenses.is_empty() {
        let found = licenses::fetch_many(pool, &licenses).await?;
        loaded.extend(
            found
                .into_iter()
                .map(|record| Change::License(record.license)),
        );
    }
    let credentials = ids(EntityKind::Credential);
    if !credentials.is_empty() {
        let found = credentials::fetch_many(pool, &credentials).await?;
        loaded.extend(found.into_iter().map(Change::Credential));
    }
    let signing_keys = ids(EntityKind::SigningKey);
    if !signing_keys.is_empty() {
        let found = signing_keys::fetch_many(pool, &signing_keys).await?;
        loaded.extend(found.into_iter().map(Change::SigningKey));
    }
    loaded.extend(
        feed.iter()
            .filter(|change| change.deleted)
            .map(|change| Change::Deleted {
                kind: change.entity,
                id: change.id,
                revision: change.revision,
            }),
    );
    loaded.sort_by_key(Change::revision);
    Ok(Some(DeltaBatch {
        revision: high_water,
        changes: loaded,
        last: (feed.len() as i64) < limit,
    }))
}
