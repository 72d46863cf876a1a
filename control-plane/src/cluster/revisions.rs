//! Learning of new revisions, whichever control plane wrote them: a PostgreSQL `LISTEN` on the
//! channel every write notifies at commit, plus a slow poll as a safety net for notifications
//! lost while the listening connection was down. The newest known revision is published on a
//! `watch` channel that every data-plane session follows.

use std::time::Duration;

use license_shared::supervisor::{Stage, Supervisor};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::db::revision::{self, CHANNEL};

/// How often the committed revision is polled in case a notification was missed.
const SAFETY_POLL: Duration = Duration::from_secs(2);

/// Starts following revisions, as two services of `supervisor` (the listener and the poller);
/// the receiver always holds the newest committed one known, and its sender closes when both
/// have stopped.
pub(crate) async fn follow(
    pool: PgPool,
    supervisor: &Supervisor,
    stage: Stage,
) -> sqlx::Result<watch::Receiver<i64>> {
    let current = revision::current(&pool).await?;
    let (sender, receiver) = watch::channel(current);
    let (listening, listener_pool) = (sender.clone(), pool.clone());
    supervisor.service("revision listener", stage, move |stop| {
        until(stop, listen(listener_pool, listening))
    });
    supervisor.service("revision poller", stage, move |stop| {
        until(stop, poll(pool, sender))
    });
    Ok(receiver)
}

/// Runs `task` (which never ends on its own) until `stop` fires.
async fn until(
    stop: CancellationToken,
    task: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::select! {
        () = task => anyhow::bail!("stopped following revisions"),
        () = stop.cancelled() => Ok(()),
    }
}

fn publish(sender: &watch::Sender<i64>, revision: i64) {
    sender.send_if_modified(|known| {
        let newer = revision > *known;
        if newer {
            *known = revision;
        }
        newer
    });
}

async fn listen(pool: PgPool, sender: watch::Sender<i64>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for revisions yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "cannot LISTEN for revisions");
            tokio::time::sleep(delay).await;
            continue;
        }
        delay = Duration::from_millis(100);
        loop {
            license_shared::fault::point("revision-listener");
            match listener.try_recv().await {
                Ok(Some(notification)) => match notification.payload().parse() {
                    Ok(revision) => publish(&sender, revision),
                    Err(_) => tracing::warn!(
                        payload = notification.payload(),
                        "ignoring a malformed revision notification"
                    ),
                },
                // The connection was lost and re-established: notifications may be missed.
                Ok(None) => {
                    if let Ok(revision) = revision::current(&pool).await {
                        publish(&sender, revision);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "revision listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn poll(pool: PgPool, sender: watch::Sender<i64>) {
    let mut ticker = tokio::time::interval(SAFETY_POLL);
    loop {
        ticker.tick().await;
        if let Ok(revision) = revision::current(&pool).await {
            publish(&sender, revision);
        }
    }
}
