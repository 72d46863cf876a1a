//! Fresh, empty PostgreSQL databases for tests, on a real server.
//!
//! Every test calls [`fresh_database`] and gets the URL of a brand-new database of its own
//! (`lstest_<uuid>`), so tests run in parallel without seeing each other's rows and need no
//! cleanup between them. The server is:
//!
//! - the one at `DATABASE_URL`, when that is set: databases are created through a connection to
//!   that URL, so it must be allowed to `CREATE DATABASE`. They are not dropped afterwards; they
//!   pile up as `lstest_…` until someone drops them.
//! - otherwise a throwaway [`PgServer`] that this test process starts on first use and that
//!   goes away, with its files, when the process exits: it lives in a static that is never
//!   dropped, so its watchdog's pipe closes exactly when the process ends, however it ends.
//!
//! Both functions may be called from any number of tests at once, each on its own tokio runtime:
//! nothing here keeps a connection or pool beyond one call.

use std::env::VarError;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use reqwest::Url;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{PgOptions, PgServer};

/// How long connecting to the server may take before we give up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The process's server once started, or why it could not be: a failure is kept too, so that
/// every test reports it at once instead of each spending seconds failing the same way.
static SERVER: OnceCell<Result<PgServer, String>> = OnceCell::const_new();

/// The URL of a database that did not exist before this call, empty and owned by the server's
/// superuser (or by `DATABASE_URL`'s user).
pub async fn fresh_database() -> anyhow::Result<String> {
    let server = server_url().await?;
    let name = format!("lstest_{}", Uuid::new_v4().simple());
    let mut conn = connect(&server).await?;
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .with_context(|| format!("creating the test database {name}"))?;
    // Closing politely only saves the server a log line; the database exists either way.
    let _ = conn.close().await;

    // `reqwest::Url` is the `url` crate's type; it keeps the user, host, port and query as given.
    let mut url = Url::parse(&server).context("parsing the server URL")?;
    url.set_path(&name);
    Ok(url.into())
}

/// The URL of the server [`fresh_database`] creates databases on: `DATABASE_URL` as given, or
/// the throwaway server's `postgres` database, starting that server if this is the first call.
/// For tests that need the server itself rather than a database on it.
pub async fn server_url() -> anyhow::Result<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Ok(url),
        Ok(_) | Err(VarError::NotPresent) => throwaway_url().await,
        Err(error) => Err(error).context("reading DATABASE_URL"),
    }
}

/// The URL of the throwaway server's `postgres` database, starting the server on the first call.
async fn throwaway_url() -> anyhow::Result<String> {
    let server = SERVER
        .get_or_init(|| async {
            let started = Instant::now();
            let server = PgServer::start(PgOptions::for_tests())
                .await
                .map_err(|error| format!("{error:#}"))?;
            // Captured with the test's output: shown when a test fails, which is when it helps.
            eprintln!(
                "throwaway PostgreSQL from {} at {} ready in {:.2?}, files in {}",
                server.bin.display(),
                server.admin_url(),
                started.elapsed(),
                server.dir.display(),
            );
            Ok(server)
        })
        .await;
    match server {
        Ok(server) => Ok(server.admin_url()),
        Err(error) => Err(anyhow!("{error}")).context("starting the throwaway PostgreSQL server"),
    }
}

/// One short-lived connection, bound to the caller's runtime and dropped before it returns.
async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    let server = describe(url);
    tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url))
        .await
        .with_context(|| format!("connecting to {server}: no answer in {CONNECT_TIMEOUT:?}"))?
        .with_context(|| format!("connecting to {server}"))
}

/// The server's address for error messages, without the password a URL may carry.
fn describe(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => format!(
            "PostgreSQL at {}:{}",
            url.host_str().unwrap_or("localhost"),
            url.port().unwrap_or(5432)
        ),
        Err(_) => "PostgreSQL (unparsable URL)".to_owned(),
    }
}
