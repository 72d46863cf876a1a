//! The data plane's side of the cluster link, as the rest of the data plane sees it: whether
//! the control plane is reachable, sync counters for `/status`, and requests to the control
//! plane's authority with a correlation id and an absolute deadline. [`super::client`] drives
//! the connection itself.
//!
//! Each connection gets a request queue of its own ([`Link::attach`]): requests queued for a
//! connection that is lost die with it and are never sent on the next one, and every waiter
//! learns at once that no answer is coming. A waiter that gives up (its deadline, or its HTTP
//! request cancelled) removes its entry. The deadline sent to the control plane is a little
//! earlier than the one this side waits for ([`deadline_margin`]), so that a control plane
//! whose clock is within that margin of ours never decides a request whose client was already
//! told 503.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use license_shared::protocol::{
    ActivationGranted, ActivationRequest, AuthorityError, CpToDp, DpToCp,
};
use license_shared::{License, LicenseKey};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::usage::Telemetry;

/// Requests waiting to be written on one connection; beyond it new requests are refused (503)
/// rather than queued behind a stalled link.
const REQUEST_QUEUE: usize = 256;

/// Shared between the API handlers and the cluster client.
#[derive(Debug)]
pub struct Link {
    connected: AtomicBool,
    /// The current connection's request queue; `None` while there is no connection.
    requests: Mutex<Option<mpsc::Sender<DpToCp>>>,
    pending: Mutex<HashMap<Uuid, oneshot::Sender<CpToDp>>>,
    pub snapshots_received: AtomicU64,
    pub deltas_received: AtomicU64,
    pub connections: AtomicU64,
    /// Usage counters, reported to the control plane by the cluster client.
    pub telemetry: Telemetry,
}

impl Default for Link {
    fn default() -> Self {
        Self::new()
    }
}

impl Link {
    pub fn new() -> Self {
        Link {
            connected: AtomicBool::new(false),
            requests: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            snapshots_received: AtomicU64::new(0),
            deltas_received: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            telemetry: Telemetry::new(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// A connection is up: requests go to the returned queue from now on.
    pub(crate) fn attach(&self) -> mpsc::Receiver<DpToCp> {
        let (sender, receiver) = mpsc::channel(REQUEST_QUEUE);
        *lock(&self.requests) = Some(sender);
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connected.store(true, Ordering::SeqCst);
        receiver
    }

    /// The connection is gone: its queue is dropped with whatever it held, and waiters learn
    /// at once that no answer is coming.
    pub(crate) fn detach(&self) {
        self.connected.store(false, Ordering::SeqCst);
        lock(&self.requests).take();
        lock(&self.pending).clear();
    }

    /// Hands an answer from the control plane to whoever waits for it.
    pub(crate) fn resolve(&self, correlation_id: Uuid, answer: CpToDp) {
        if let Some(waiter) = lock(&self.pending).remove(&correlation_id) {
            let _ = waiter.send(answer);
        }
    }

    /// How many requests wait for an answer.
    pub fn pending_requests(&self) -> usize {
        lock(&self.pending).len()
    }

    /// Asks the control plane to activate a device.
    pub async fn activate(
        &self,
        request: ActivationRequest,
        timeout: Duration,
    ) -> Result<ActivationGranted, AuthorityError> {
        let answer = self
            .ask(timeout, |correlation_id, deadline_unix_ms| {
                DpToCp::Activate {
                    correlation_id,
                    deadline_unix_ms,
                    request,
                }
            })
            .await?;
        match answer {
            CpToDp::ActivateResult { outcome, .. } => outcome,
            _ => Err(unavailable("the control plane answered something else")),
        }
    }

    /// Asks the control plane to free a device's seat.
    pub async fn deactivate(
        &self,
        license_key: LicenseKey,
        device_id: String,
        timeout: Duration,
    ) -> Result<License, AuthorityError> {
        let answer = self
            .ask(timeout, |correlation_id, deadline_unix_ms| {
                DpToCp::Deactivate {
                    correlation_id,
                    deadline_unix_ms,
                    license_key,
                    device_id,
                }
            })
            .await?;
        match answer {
            CpToDp::DeactivateResult { outcome, .. } => outcome,
            _ => Err(unavailable("the control plane answered something else")),
        }
    }

    async fn ask(
        &self,
        timeout: Duration,
        message: impl FnOnce(Uuid, i64) -> DpToCp,
    ) -> Result<CpToDp, AuthorityError> {
        let Some(requests) = lock(&self.requests).clone() else {
            return Err(unavailable(
                "the control plane is unreachable; new devices cannot be activated now",
            ));
        };
        let correlation_id = Uuid::new_v4();
        let (waiter, answer) = oneshot::channel();
        lock(&self.pending).insert(correlation_id, waiter);
        // Removes the entry however this future ends: answered, timed out, or dropped with a
        // cancelled HTTP request.
        let _pending = PendingEntry {
            link: self,
            correlation_id,
        };
        let sent_by = chrono::Utc::now() + (timeout - deadline_margin(timeout));
        match requests.try_send(message(correlation_id, sent_by.timestamp_millis())) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(unavailable(
                    "the link to the control plane is congested; try again",
                ));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(unavailable(
                    "the connection to the control plane was lost before it answered",
                ));
            }
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(unavailable(
                "the connection to the control plane was lost before it answered",
            )),
            Err(_) => Err(unavailable(format!(
                "the control plane did not answer within {timeout:?}"
            ))),
        }
    }
}

/// How much earlier than our own deadline the control plane must have decided: a fifth of
/// the timeout, at most a second. Covers the commit's own duration and clock skew between
/// the nodes up to that much (keep the cluster's clocks in sync, with NTP).
fn deadline_margin(timeout: Duration) -> Duration {
    (timeout / 5).min(Duration::from_secs(1))
}

/// A waiter's entry in the pending map, removed when the waiter goes.
struct PendingEntry<'a> {
    link: &'a Link,
    correlation_id: Uuid,
}

impl Drop for PendingEntry<'_> {
    fn drop(&mut self) {
        lock(&self.link.pending).remove(&self.correlation_id);
    }
}

fn unavailable(message: impl Into<String>) -> AuthorityError {
    AuthorityError::Unreachable {
        message: message.into(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing here can be left half-updated by a panic.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use license_shared::LicenseKey;

    fn request() -> ActivationRequest {
        ActivationRequest {
            license_key: LicenseKey::generate(None),
            product_id: None,
            device_id: "device".into(),
            device_name: None,
            client_facts: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn without_a_connection_nothing_is_queued() {
        let link = Link::new();
        let refused = link.activate(request(), Duration::from_secs(1)).await;
        assert!(matches!(refused, Err(AuthorityError::Unreachable { .. })));
        assert_eq!(link.pending_requests(), 0);
    }

    #[tokio::test]
    async fn a_request_queued_for_a_lost_connection_is_never_sent_on_the_next() {
        let link = std::sync::Arc::new(Link::new());
        let mut first = link.attach();
        let asking = tokio::spawn({
            let link = link.clone();
            async move { link.activate(request(), Duration::from_secs(5)).await }
        });
        // The request is queued on the first connection …
        let queued = first.recv().await.expect("queued");
        assert!(matches!(queued, DpToCp::Activate { .. }));
        // … which is lost: the waiter is told at once, and the next connection starts empty.
        link.detach();
        let answer = asking.await.expect("no panic");
        assert!(matches!(answer, Err(AuthorityError::Unreachable { .. })));
        let mut second = link.attach();
        assert!(second.try_recv().is_err(), "nothing carried over");
        assert_eq!(link.pending_requests(), 0);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_removes_its_entry_and_the_deadline_is_absolute() {
        let link = std::sync::Arc::new(Link::new());
        let mut queue = link.attach();
        let asking = tokio::spawn({
            let link = link.clone();
            async move { link.activate(request(), Duration::from_secs(5)).await }
        });
        let Some(DpToCp::Activate {
            deadline_unix_ms, ..
        }) = queue.recv().await
        else {
            panic!("an activation");
        };
        let now = chrono::Utc::now().timestamp_millis();
        assert!(
            (now + 3_000..=now + 4_100).contains(&deadline_unix_ms),
            "the control plane's deadline is ours minus the margin: {} ms from now",
            deadline_unix_ms - now
        );
        assert_eq!(link.pending_requests(), 1);
        asking.abort();
        let _ = asking.await;
        assert_eq!(link.pending_requests(), 0, "the cancelled waiter left");
    }
}
