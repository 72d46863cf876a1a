//! The data plane's side of the cluster link, as the rest of the data plane sees it: whether
//! the control plane is reachable, sync counters for `/status`, and requests to the control
//! plane's activation authority with a correlation id and a deadline. [`crate::client`] drives
//! the connection itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use license_shared::protocol::{ActivationGranted, ActivationRequest, CpToDp, DpToCp};
use license_shared::{ApiError, License, LicenseKey, codes};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::telemetry::Telemetry;

/// Shared between the API handlers and the cluster client.
#[derive(Debug)]
pub struct Link {
    connected: AtomicBool,
    outbound: mpsc::Sender<DpToCp>,
    pending: Mutex<HashMap<Uuid, oneshot::Sender<CpToDp>>>,
    pub snapshots_received: AtomicU64,
    pub deltas_received: AtomicU64,
    pub connections: AtomicU64,
    /// Usage counters, reported to the control plane by the cluster client.
    pub telemetry: Telemetry,
}

impl Link {
    /// A link and the receiver of the messages it wants sent.
    pub fn new() -> (Self, mpsc::Receiver<DpToCp>) {
        let (outbound, receiver) = mpsc::channel(1024);
        let link = Link {
            connected: AtomicBool::new(false),
            outbound,
            pending: Mutex::new(HashMap::new()),
            snapshots_received: AtomicU64::new(0),
            deltas_received: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            telemetry: Telemetry::new(),
        };
        (link, receiver)
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::SeqCst);
        if !connected {
            // Waiters learn at once that no answer is coming.
            self.pending_map().clear();
        }
    }

    fn pending_map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, oneshot::Sender<CpToDp>>> {
        self.pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Hands an answer from the control plane to whoever waits for it.
    pub(crate) fn resolve(&self, correlation_id: Uuid, answer: CpToDp) {
        if let Some(waiter) = self.pending_map().remove(&correlation_id) {
            let _ = waiter.send(answer);
        }
    }

    /// Asks the control plane to activate a device.
    pub async fn activate(
        &self,
        request: ActivationRequest,
        deadline: Duration,
    ) -> Result<ActivationGranted, ApiError> {
        let answer = self
            .ask(deadline, |correlation_id, deadline_ms| DpToCp::Activate {
                correlation_id,
                deadline_ms,
                request,
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
        deadline: Duration,
    ) -> Result<License, ApiError> {
        let answer = self
            .ask(deadline, |correlation_id, deadline_ms| DpToCp::Deactivate {
                correlation_id,
                deadline_ms,
                license_key,
                device_id,
            })
            .await?;
        match answer {
            CpToDp::DeactivateResult { outcome, .. } => outcome,
            _ => Err(unavailable("the control plane answered something else")),
        }
    }

    async fn ask(
        &self,
        deadline: Duration,
        message: impl FnOnce(Uuid, u64) -> DpToCp,
    ) -> Result<CpToDp, ApiError> {
        if !self.is_connected() {
            return Err(unavailable(
                "the control plane is unreachable; new devices cannot be activated now",
            ));
        }
        let correlation_id = Uuid::new_v4();
        let (waiter, answer) = oneshot::channel();
        self.pending_map().insert(correlation_id, waiter);
        let deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
        if self
            .outbound
            .send(message(correlation_id, deadline_ms))
            .await
            .is_err()
        {
            self.pending_map().remove(&correlation_id);
            return Err(unavailable("the cluster client is not running"));
        }
        match tokio::time::timeout(deadline, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(unavailable(
                "the connection to the control plane was lost before it answered",
            )),
            Err(_) => {
                self.pending_map().remove(&correlation_id);
                Err(unavailable(format!(
                    "the control plane did not answer within {deadline:?}"
                )))
            }
        }
    }
}

fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::unavailable(codes::CONTROL_PLANE_UNAVAILABLE, message)
}
