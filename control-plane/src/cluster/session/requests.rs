//! What a data plane asks of the control plane: activations and deactivations for the
//! [`crate::authority`], and telemetry batches. Each runs in a task of the session's own
//! [`JoinSet`] (aborted with the session), at most [`MAX_IN_FLIGHT`] authority requests at a
//! time per data plane (beyond that they are answered `busy` at once), and answers through
//! the session's outbox. A request whose deadline has already passed is dropped unread: its
//! client was told 503 and must never be activated later. The authority checks the deadline
//! once more right before it commits.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use license_shared::protocol::{self, AuthorityError, CpToDp, UsageBatch};
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::outbox::Outgoing;
use crate::authority;
use crate::db::usage;

/// Authority requests one data plane may have in hand at once.
pub(super) const MAX_IN_FLIGHT: usize = 32;

/// A request for the authority, as the data plane sent it.
#[derive(Debug)]
pub(super) enum AuthorityRequest {
    Activate(license_shared::protocol::ActivationRequest),
    Deactivate {
        license_key: license_shared::LicenseKey,
        device_id: String,
    },
}

/// The requests of one session in progress.
#[derive(Debug)]
pub(super) struct Requests {
    pool: PgPool,
    node_id: Uuid,
    outbox: mpsc::Sender<Outgoing>,
    permits: Arc<Semaphore>,
    pub(super) tasks: JoinSet<()>,
}

impl Requests {
    pub(super) fn new(pool: PgPool, node_id: Uuid, outbox: mpsc::Sender<Outgoing>) -> Self {
        Requests {
            pool,
            node_id,
            outbox,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            tasks: JoinSet::new(),
        }
    }

    /// Starts deciding one request, or answers it at once when it cannot be taken.
    pub(super) fn authority(
        &mut self,
        correlation_id: Uuid,
        deadline_unix_ms: i64,
        request: AuthorityRequest,
    ) {
        let Some(deadline) = DateTime::<Utc>::from_timestamp_millis(deadline_unix_ms) else {
            return;
        };
        let left = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            tracing::debug!(%correlation_id, node_id = %self.node_id, "dropped a request past its deadline");
            return;
        }
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            let busy = answer(correlation_id, &request, AuthorityError::Busy);
            self.outbox.try_send(Outgoing::Frame(busy)).ok();
            return;
        };
        let (pool, outbox) = (self.pool.clone(), self.outbox.clone());
        self.tasks.spawn(async move {
            let _permit = permit;
            let decided = tokio::time::timeout(left, decide(&pool, request, deadline)).await;
            // Past the deadline nobody waits for the answer (and nothing was committed).
            if let Ok(outcome) = decided {
                let frame = match outcome {
                    Decision::Activated(outcome) => protocol::encode(&CpToDp::ActivateResult {
                        correlation_id,
                        outcome,
                    }),
                    Decision::Deactivated(outcome) => protocol::encode(&CpToDp::DeactivateResult {
                        correlation_id,
                        outcome,
                    }),
                };
                outbox.send(Outgoing::Frame(frame)).await.ok();
            }
        });
    }

    /// Records a telemetry batch once, then acknowledges it (not acknowledged on failure: the
    /// data plane sends it again).
    pub(super) fn usage(&mut self, batch: UsageBatch) {
        let (pool, outbox, node_id) = (self.pool.clone(), self.outbox.clone(), self.node_id);
        self.tasks.spawn(async move {
            let recorded = usage::record_batch(
                &pool,
                node_id,
                batch.sequence,
                &batch.requests,
                &batch.validated,
            )
            .await;
            match recorded {
                Ok(_) => {
                    let ack = protocol::encode(&CpToDp::UsageAck {
                        sequence: batch.sequence,
                    });
                    outbox.send(Outgoing::Frame(ack)).await.ok();
                }
                Err(error) => tracing::warn!(%error, %node_id, "telemetry not recorded"),
            }
        });
    }
}

enum Decision {
    Activated(Result<protocol::ActivationGranted, AuthorityError>),
    Deactivated(Result<license_shared::License, AuthorityError>),
}

async fn decide(pool: &PgPool, request: AuthorityRequest, deadline: DateTime<Utc>) -> Decision {
    match request {
        AuthorityRequest::Activate(request) => Decision::Activated(
            authority::activate(pool, request, Utc::now(), Some(deadline)).await,
        ),
        AuthorityRequest::Deactivate {
            license_key,
            device_id,
        } => Decision::Deactivated(
            authority::deactivate(pool, &license_key, &device_id, Some(deadline)).await,
        ),
    }
}

/// An immediate answer (no decision made).
fn answer(correlation_id: Uuid, request: &AuthorityRequest, error: AuthorityError) -> Vec<u8> {
    match request {
        AuthorityRequest::Activate(_) => protocol::encode(&CpToDp::ActivateResult {
            correlation_id,
            outcome: Err(error),
        }),
        AuthorityRequest::Deactivate { .. } => protocol::encode(&CpToDp::DeactivateResult {
            correlation_id,
            outcome: Err(error),
        }),
    }
}
