//! A snapshot being received: its chunks go to a thread of their own that builds the new state,
//! so that building one chunk overlaps with receiving and decoding the next on the link's task
//! (at a million licenses, building takes about a third of the data plane's sync time).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use license_shared::protocol::Change;
use uuid::Uuid;

use crate::store::SnapshotBuilder;

/// Decoded chunks waiting for the builder: enough to ride out a slow chunk, few enough to
/// bound the memory held twice (a chunk is about a megabyte decoded).
const QUEUED_CHUNKS: usize = 8;

/// The builder thread could not be started, or stopped before the snapshot ended.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("cannot start the snapshot builder thread: {0}")]
    Spawn(std::io::Error),
    #[error("the snapshot builder thread stopped early")]
    Stopped,
}

/// A snapshot under construction on its own thread.
#[derive(Debug)]
pub struct SnapshotIntake {
    chunks: SyncSender<Vec<Change>>,
    builder: JoinHandle<(SnapshotBuilder, Duration)>,
}

impl SnapshotIntake {
    /// Starts building an empty state of the license set `cluster_id`.
    pub fn start(cluster_id: Uuid) -> Result<Self, IntakeError> {
        let (chunks, received) = sync_channel(QUEUED_CHUNKS);
        let builder = std::thread::Builder::new()
            .name("snapshot-builder".into())
            .spawn(move || build(SnapshotBuilder::new(Some(cluster_id)), &received))
            .map_err(IntakeError::Spawn)?;
        Ok(SnapshotIntake { chunks, builder })
    }

    /// Hands one decoded chunk to the builder (waits when it is [`QUEUED_CHUNKS`] behind).
    pub fn add(&self, changes: Vec<Change>) -> Result<(), IntakeError> {
        self.chunks.send(changes).map_err(|_| IntakeError::Stopped)
    }

    /// Waits for the builder to take in every chunk; returns the builder and the time it
    /// spent building.
    pub fn finish(self) -> Result<(SnapshotBuilder, Duration), IntakeError> {
        drop(self.chunks);
        self.builder.join().map_err(|_| IntakeError::Stopped)
    }
}

/// Adds chunks until the sender is gone (the snapshot ended, or the connection was lost and
/// the intake dropped: then the partial state is dropped with the thread's result).
fn build(
    mut builder: SnapshotBuilder,
    chunks: &Receiver<Vec<Change>>,
) -> (SnapshotBuilder, Duration) {
    let mut busy = Duration::ZERO;
    while let Ok(chunk) = chunks.recv() {
        let started = Instant::now();
        builder.add(chunk);
        busy += started.elapsed();
    }
    (builder, busy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::license;

    #[test]
    fn chunks_build_the_same_state_as_adding_them_in_place() {
        let cluster = Uuid::new_v4();
        let chunks: Vec<Vec<Change>> = (0..5)
            .map(|chunk| {
                (0..100)
                    .map(|n| Change::License(license(chunk * 100 + n)))
                    .collect()
            })
            .collect();
        let intake = SnapshotIntake::start(cluster).expect("thread");
        for chunk in chunks.clone() {
            intake.add(chunk).expect("builder running");
        }
        let (built, _) = intake.finish().expect("finished");
        let mut direct = SnapshotBuilder::new(Some(cluster));
        for chunk in chunks {
            direct.add(chunk);
        }
        assert_eq!(built.license_count(), 500);
        assert_eq!(built.license_count(), direct.license_count());
        let (built, direct) = (built.build(7), direct.build(7));
        for change in direct.licenses() {
            let key = &change.key;
            assert_eq!(built.license(key).map(|l| l.id), Some(change.id));
        }
        assert_eq!(built.cluster_id(), Some(cluster));
    }
}
