//! PostgreSQL: the connection pool, the embedded migrations, and one module per table family.
//! Every write to a replicated entity goes through [`revision`] so the change feed stays in
//! commit order.

pub(crate) mod activations;
pub mod changes;
pub(crate) mod credentials;
pub mod customers;
pub(crate) mod data_planes;
pub(crate) mod entity_kind;
pub mod licenses;
pub mod products;
pub(crate) mod report;
pub mod revision;
pub(crate) mod signing_keys;
pub(crate) mod sync;
pub mod tokens;
pub mod usage;

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::cli::DatabaseArgs;

/// A pool that connects lazily, so a server can start (and report not ready) while the
/// database is away, and whose requests give up after `--db-acquire-timeout`.
pub async fn connect(args: &DatabaseArgs) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = args
        .database_url
        .parse()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(args.db_max_connections)
        .acquire_timeout(args.db_acquire_timeout)
        .connect_lazy_with(options.application_name("license-control-plane"));
    wait_until_reachable(&pool, args.db_startup_timeout).await?;
    Ok(pool)
}

/// Retries a trivial query until the database answers or `timeout` passes.
async fn wait_until_reachable(pool: &PgPool, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match sqlx::query("SELECT 1").execute(pool).await {
            Ok(_) => return Ok(()),
            Err(error) if started.elapsed() < timeout => {
                tracing::warn!(%error, retry_in = ?delay, "database not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                return Err(error).context(format!("database not reachable after {timeout:?}"));
            }
        }
    }
}

/// Applies the migrations embedded in the binary. Concurrent control planes are safe: sqlx
/// takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations")
        .run(pool)
        .await
        .context("applying database migrations")
}

/// Whether an error means "the database is unreachable or overloaded" (answer 503) rather than
/// a bug (answer 500).
pub(crate) fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P0x: shutdown / cannot connect now; 53300: too many
            // connections; 40001/40P01 are retryable conflicts the client may simply retry.
            code.starts_with("08")
                || code.starts_with("57P0")
                || code == "53300"
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    }
}

/// The constraint a unique or foreign-key violation names, if the error is one.
pub fn violated_constraint(error: &sqlx::Error) -> Option<(ViolationKind, String)> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    let kind = match db.code().as_deref() {
        Some("23505") => ViolationKind::Unique,
        Some("23503") => ViolationKind::ForeignKey,
        _ => return None,
    };
    Some((kind, db.constraint().unwrap_or_default().to_owned()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    Unique,
    ForeignKey,
}

/// One page of a listing: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: u32,
    pub per_page: u32,
}

impl Page {
    pub fn limit(self) -> i64 {
        i64::from(self.per_page)
    }

    pub fn offset(self) -> i64 {
        i64::from(self.number.saturating_sub(1)) * i64::from(self.per_page)
    }
}

/// What deleting a row that others may reference did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// Still referenced by this many licenses; nothing was deleted.
    InUse(i64),
}

/// A stored value that no longer parses: the database was changed behind our back.
pub(crate) fn corrupt(column: &str, error: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {column} is invalid: {error}").into())
}
