//! Usage telemetry (DESIGN §5): requests served and the latest validation time of each license,
//! counted on the request path with one atomic add (and, for validations, one short lock on one
//! of 16 shards), and reported to the control plane in batches by the cluster client.
//!
//! One batch is in flight at a time: it is kept until the control plane acknowledges it, and
//! sent again after a reconnect or when no acknowledgement came within a few intervals; its
//! sequence number lets the control plane count it once. Batches made meanwhile wait in a
//! bounded queue, oldest first. Sequences start at the start-up time
//! in microseconds, so they keep increasing across restarts. Counts not yet taken into a batch
//! when the process stops are lost (at most one interval's worth).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use license_shared::protocol::UsageBatch;
use uuid::Uuid;

/// Validation-time shards: enough that concurrent requests rarely meet on one lock.
const SHARDS: usize = 16;
/// Unacknowledged batches kept while the control plane is away (the oldest go first).
const MAX_PENDING: usize = 10_000;

/// Latest validation time per license id (ids come from the replicated set, not from
/// requests, so a fast hash is safe).
type ValidatedShard = HashMap<Uuid, DateTime<Utc>, foldhash::fast::RandomState>;

/// Counters and the batches not yet acknowledged.
#[derive(Debug)]
pub struct Telemetry {
    requests: AtomicU64,
    validated: [Mutex<ValidatedShard>; SHARDS],
    hasher: foldhash::fast::RandomState,
    next_sequence: AtomicI64,
    pending: Mutex<Batches>,
}

/// The batch in flight and those waiting behind it.
#[derive(Debug, Default)]
struct Batches {
    /// Sent and not yet acknowledged.
    in_flight: Option<UsageBatch>,
    waiting: VecDeque<UsageBatch>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        Telemetry {
            requests: AtomicU64::new(0),
            validated: std::array::from_fn(|_| Mutex::new(ValidatedShard::default())),
            hasher: foldhash::fast::RandomState::default(),
            next_sequence: AtomicI64::new(Utc::now().timestamp_micros()),
            pending: Mutex::new(Batches::default()),
        }
    }

    /// One request served.
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A license was validated now.
    pub fn validated(&self, license_id: Uuid, at: DateTime<Utc>) {
        let shard = (self.hasher.hash_one(license_id) as usize) % SHARDS;
        let mut shard = lock(&self.validated[shard]);
        let latest = shard.entry(license_id).or_insert(at);
        if *latest < at {
            *latest = at;
        }
    }

    /// Moves what was counted since the last call into a new batch (when there is anything),
    /// and returns the batch to send now, if any: the oldest waiting one when none is in
    /// flight, or the one in flight again when `resend` (a new connection, or no
    /// acknowledgement for too long).
    pub fn next_batch(&self, now: DateTime<Utc>, resend: bool) -> Option<UsageBatch> {
        let requests = self.requests.swap(0, Ordering::Relaxed);
        let mut validated = Vec::new();
        for shard in &self.validated {
            // Drained, not taken: the map keeps its capacity, so the request path does not
            // grow it back (rehashing) after every batch.
            validated.extend(lock(shard).drain());
        }
        let mut batches = lock(&self.pending);
        if requests > 0 || !validated.is_empty() {
            let counts = if requests > 0 {
                vec![(now.format("%Y-%m").to_string(), requests as i64)]
            } else {
                Vec::new()
            };
            batches.waiting.push_back(UsageBatch {
                sequence: self.next_sequence.fetch_add(1, Ordering::Relaxed),
                requests: counts,
                validated,
            });
            while batches.waiting.len() > MAX_PENDING {
                if let Some(dropped) = batches.waiting.pop_front() {
                    tracing::warn!(
                        sequence = dropped.sequence,
                        "dropping the oldest unacknowledged telemetry batch"
                    );
                }
            }
        }
        match &batches.in_flight {
            Some(batch) => resend.then(|| batch.clone()),
            None => {
                let next = batches.waiting.pop_front()?;
                batches.in_flight = Some(next.clone());
                Some(next)
            }
        }
    }

    /// The control plane has counted batch `sequence`.
    pub fn acknowledge(&self, sequence: i64) {
        let mut batches = lock(&self.pending);
        if batches
            .in_flight
            .as_ref()
            .is_some_and(|batch| batch.sequence == sequence)
        {
            batches.in_flight = None;
        }
    }

    /// How many batches wait for an acknowledgement (in flight or queued).
    pub fn pending(&self) -> usize {
        let batches = lock(&self.pending);
        batches.waiting.len() + usize::from(batches.in_flight.is_some())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing here can be left half-updated by a panic.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_batch_is_in_flight_until_acknowledged() {
        let telemetry = Telemetry::new();
        let now = Utc::now();
        assert!(
            telemetry.next_batch(now, false).is_none(),
            "nothing counted, nothing sent"
        );
        for _ in 0..5 {
            telemetry.count_request();
        }
        let license = Uuid::new_v4();
        telemetry.validated(license, now - chrono::Duration::seconds(5));
        telemetry.validated(license, now);
        let first = telemetry.next_batch(now, false).expect("a batch");
        assert_eq!(first.requests, vec![(now.format("%Y-%m").to_string(), 5)]);
        assert_eq!(first.validated, vec![(license, now)]);

        telemetry.count_request();
        assert!(
            telemetry.next_batch(now, false).is_none(),
            "the second waits while the first is in flight"
        );
        assert_eq!(telemetry.pending(), 2);
        let again = telemetry.next_batch(now, true).expect("resent");
        assert_eq!(
            again.sequence, first.sequence,
            "a reconnect resends the same batch"
        );
        telemetry.acknowledge(first.sequence);
        let second = telemetry.next_batch(now, false).expect("the next one");
        assert!(second.sequence > first.sequence);
        telemetry.acknowledge(second.sequence);
        assert_eq!(telemetry.pending(), 0);
        assert!(telemetry.next_batch(now, true).is_none());
    }

    #[test]
    fn sequences_keep_increasing_across_restarts() {
        let before = Telemetry::new();
        before.count_request();
        let first = before
            .next_batch(Utc::now(), false)
            .expect("a batch")
            .sequence;
        std::thread::sleep(std::time::Duration::from_millis(2));
        let after = Telemetry::new();
        after.count_request();
        assert!(
            after
                .next_batch(Utc::now(), false)
                .expect("a batch")
                .sequence
                > first
        );
    }
}
