//! [`CacheWriter`]: the background task that writes the store to the disk cache after changes.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::file::save;
use crate::store::{State, Store};

/// How long the background writer rests after a save, in multiples of the save's duration.
const REST_FACTOR: u32 = 3;

/// Saves the store in the background whenever it changed. Saves are serialized and coalesce:
/// a burst of changes costs one or two writes, a state already written is not written again,
/// and readers are never blocked (a save works on an `Arc` of the state, off the runtime).
///
/// After a save the background task ([`CacheWriter::run`], registered with the supervisor)
/// rests three times as long as the save took, so that a large store under a steady stream of
/// deltas does not keep a core and the disk busy (a million licenses take seconds to write). A
/// cache a few seconds stale costs nothing but a few more deltas at the next start, which
/// resumes from the cache's revision. When told to stop it writes once more and ends.
#[derive(Debug, Clone)]
pub struct CacheWriter {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    store: Arc<Store>,
    dirty: Notify,
    /// The state written last (weak: it must not keep an old state alive), held across a save
    /// so that two saves never race to the rename.
    last_saved: tokio::sync::Mutex<Weak<State>>,
}

impl CacheWriter {
    /// A writer of `store` into `dir`; nothing is written until [`CacheWriter::run`] runs.
    pub fn new(dir: PathBuf, store: Arc<Store>) -> Self {
        CacheWriter {
            shared: Arc::new(Shared {
                dir,
                store,
                dirty: Notify::new(),
                last_saved: tokio::sync::Mutex::new(Weak::new()),
            }),
        }
    }

    /// Writes the state whenever it changed until `stop` fires, then once more.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                () = self.shared.dirty.notified() => {}
                () = stop.cancelled() => break,
            }
            if let Some(took) = self.shared.flush().await {
                tokio::select! {
                    () = tokio::time::sleep(took * REST_FACTOR) => {}
                    () = stop.cancelled() => break,
                }
            }
        }
        self.shared.flush().await;
        Ok(())
    }

    /// Marks the state as changed: the background task writes it soon.
    pub fn changed(&self) {
        self.shared.dirty.notify_one();
    }

    /// Writes the current state now (unless it is already on disk); failures are logged.
    pub async fn flush(&self) {
        self.shared.flush().await;
    }
}

impl Shared {
    /// Writes the current state unless it is already on disk; returns how long a write took.
    async fn flush(&self) -> Option<Duration> {
        let mut last_saved = self.last_saved.lock().await;
        if !self.store.has_state() {
            return None;
        }
        let state = self.store.load_full();
        let written = Arc::downgrade(&state);
        if Weak::ptr_eq(&last_saved, &written) {
            return None;
        }
        let dir = self.dir.clone();
        let started = Instant::now();
        let revision = state.revision();
        let (done, saved) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("dp-cache-writer".to_owned())
            .spawn(move || {
                lower_this_threads_priority();
                done.send(save(&dir, &state)).ok();
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the disk cache writer");
            return None;
        }
        match saved.await {
            Ok(Ok(bytes)) => {
                *last_saved = written;
                tracing::debug!(
                    revision, bytes, elapsed = ?started.elapsed(), "disk cache written"
                );
            }
            Ok(Err(error)) => tracing::warn!(%error, "cannot write the disk cache"),
            Err(_) => tracing::warn!("the disk cache writer failed"),
        }
        Some(started.elapsed())
    }
}

/// Gives the calling thread the lowest CPU priority (nice 19). Writing the whole state takes
/// a core for a while (a second or more at a million licenses); at normal priority it competes
/// with answering requests and applying deltas, which are what a data plane is for. Under full
/// load the write still progresses, only more slowly.
fn lower_this_threads_priority() {
    // On Linux, PRIO_PROCESS with a thread id sets that thread's nice value only.
    if let Err(error) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(%error, "cannot lower the disk cache writer's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::file::{HEADER_LEN, load, path, tests::load_bytes};
    use crate::store::tests::license;
    use license_shared::protocol::Change;
    use uuid::Uuid;

    #[tokio::test]
    async fn the_writer_saves_changes_and_writes_once_more_when_stopped() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(Store::new());
        let writer = CacheWriter::new(dir.path().to_path_buf(), Arc::clone(&store));
        let stop = CancellationToken::new();
        let running = tokio::spawn(writer.clone().run(stop.clone()));
        writer.flush().await;
        assert!(
            load(dir.path()).expect("loads").is_none(),
            "no state, no file"
        );

        let mut builder = store.begin_snapshot(Uuid::nil());
        builder.push(Change::License(license(1)));
        store.finish_snapshot(builder, 1);
        writer.changed();
        let second = license(2);
        store.apply_deltas(2, vec![Change::License(second.clone())]);
        writer.changed();
        // The background task writes it (read the file directly: `load` would remove the
        // temp file of a save in progress).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let on_disk = std::fs::read(path(dir.path())).unwrap_or_default();
            if on_disk.len() > HEADER_LEN {
                let scratch = tempfile::tempdir().expect("dir");
                let loaded = load_bytes(scratch.path(), &on_disk).expect("loads");
                if loaded.is_some_and(|state| state.license(&second.key).is_some()) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the change was not written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // An explicit flush of a state already on disk writes nothing.
        let modified = std::fs::metadata(path(dir.path()))
            .and_then(|file| file.modified())
            .expect("mtime");
        writer.flush().await;
        assert_eq!(
            std::fs::metadata(path(dir.path()))
                .and_then(|file| file.modified())
                .expect("mtime"),
            modified
        );

        // A change made just before the stop is on disk once the task has ended.
        let third = license(3);
        store.apply_deltas(3, vec![Change::License(third.clone())]);
        stop.cancel();
        running.await.expect("no panic").expect("stopped cleanly");
        let loaded = load(dir.path()).expect("loads").expect("present");
        assert_eq!(loaded.revision(), 3);
        assert!(loaded.license(&third.key).is_some());
    }
}
