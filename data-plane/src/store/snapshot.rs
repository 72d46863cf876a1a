//! [`SnapshotBuilder`]: a full state built off to the side (a snapshot being received, or the
//! disk cache being read) and swapped in whole.

use license_shared::protocol::Change;
use uuid::Uuid;

use super::state::State;

/// A full state being received (a snapshot) or read (the disk cache), off to the side: the
/// store keeps serving its current state until [`Store::finish_snapshot`] swaps this one in.
/// Dropping a builder (a connection lost mid-snapshot) leaves the store untouched.
#[derive(Debug)]
pub struct SnapshotBuilder {
    state: State,
}

impl SnapshotBuilder {
    /// An empty state of the license set `cluster_id`.
    pub fn new(cluster_id: Option<Uuid>) -> Self {
        SnapshotBuilder {
            state: State {
                cluster_id,
                ..State::default()
            },
        }
    }

    /// Adds one chunk of entities.
    pub fn add(&mut self, changes: Vec<Change>) {
        for change in changes {
            self.state.apply(change);
        }
    }

    /// Adds one entity.
    pub fn push(&mut self, change: Change) {
        self.state.apply(change);
    }

    /// How many licenses have been received so far.
    pub fn license_count(&self) -> usize {
        self.state.license_count()
    }

    /// The finished state, as of `revision`.
    pub fn build(self, revision: i64) -> State {
        State {
            revision,
            has_state: true,
            ..self.state
        }
    }
}
