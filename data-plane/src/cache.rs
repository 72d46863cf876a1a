//! The disk cache (DESIGN §6): the whole state, written atomically after changes (temp file,
//! fsync, rename, fsync of the directory) with a checksum, so that a data plane restarted while
//! the control plane is away serves at once. A corrupt cache is reported and ignored.
//!
//! File: `LSDPCACHE` magic, format version (u32 LE), payload length (u64 LE), SHA-256 of the
//! payload, then the payload: deflate-compressed JSON of a [`StateImage`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::store::{State, StateImage, Store};

const MAGIC: &[u8; 9] = b"LSDPCACHE";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 9 + 4 + 8 + 32;
const FILE: &str = "state.cache";

/// Why a cache file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot read or write the cache: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a cache file (bad magic)")]
    BadMagic,
    #[error("cache format version {0} is not supported")]
    UnsupportedVersion(u32),
    #[error("the cache file is truncated")]
    Truncated,
    #[error("the cache checksum does not match: the file is corrupt")]
    Checksum,
    #[error("the cache payload cannot be decoded: {0}")]
    Decode(String),
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes `state` to `dir` atomically.
pub fn save(dir: &Path, state: &State) -> Result<u64, CacheError> {
    let json = serde_json::to_vec(&state.image()).map_err(|e| CacheError::Decode(e.to_string()))?;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&json)?;
    let payload = encoder.finish()?;
    let mut file_bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    file_bytes.extend_from_slice(MAGIC);
    file_bytes.extend_from_slice(&VERSION.to_le_bytes());
    file_bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    file_bytes.extend_from_slice(&Sha256::digest(&payload));
    file_bytes.extend_from_slice(&payload);

    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    temp.write_all(&file_bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path(dir)).map_err(|error| error.error)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(file_bytes.len() as u64)
}

/// Reads the cache in `dir`: `None` when there is none.
pub fn load(dir: &Path) -> Result<Option<State>, CacheError> {
    let bytes = match std::fs::read(path(dir)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(CacheError::BadMagic);
    }
    if bytes.len() < HEADER_LEN {
        return Err(CacheError::Truncated);
    }
    let version = u32::from_le_bytes(bytes[9..13].try_into().map_err(|_| CacheError::Truncated)?);
    if version != VERSION {
        return Err(CacheError::UnsupportedVersion(version));
    }
    let length = u64::from_le_bytes(
        bytes[13..21]
            .try_into()
            .map_err(|_| CacheError::Truncated)?,
    );
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != length {
        return Err(CacheError::Truncated);
    }
    if Sha256::digest(payload).as_slice() != &bytes[21..HEADER_LEN] {
        return Err(CacheError::Checksum);
    }
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(payload)
        .read_to_end(&mut json)
        .map_err(|e| CacheError::Decode(e.to_string()))?;
    let image: StateImage =
        serde_json::from_slice(&json).map_err(|e| CacheError::Decode(e.to_string()))?;
    Ok(Some(State::from_image(image)))
}

/// Saves the store in the background whenever it changed; saves coalesce, so a burst of
/// changes costs one or two writes, and readers are never blocked.
#[derive(Debug, Clone)]
pub struct CacheWriter {
    dir: PathBuf,
    store: Arc<Store>,
    dirty: Arc<Notify>,
}

impl CacheWriter {
    pub fn spawn(dir: PathBuf, store: Arc<Store>) -> Self {
        let writer = CacheWriter {
            dir,
            store,
            dirty: Arc::new(Notify::new()),
        };
        let background = writer.clone();
        tokio::spawn(async move {
            loop {
                background.dirty.notified().await;
                background.flush().await;
            }
        });
        writer
    }

    /// Marks the state as changed.
    pub fn changed(&self) {
        self.dirty.notify_one();
    }

    /// Writes the current state now.
    pub async fn flush(&self) {
        if !self.store.has_state() {
            return;
        }
        let (dir, state) = (self.dir.clone(), self.store.load_full());
        let saved = tokio::task::spawn_blocking(move || save(&dir, &state)).await;
        match saved {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot write the disk cache"),
            Err(error) => tracing::warn!(%error, "the disk cache writer failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use license_shared::protocol::Change;

    fn sample() -> State {
        let store = Store::new();
        let mut builder = store.begin_snapshot(uuid::Uuid::nil());
        builder.add(
            (0..100)
                .map(|n| Change::License(crate::store::tests::license(n)))
                .collect(),
        );
        store.finish_snapshot(builder, 100);
        State::clone(&store.load())
    }

    #[test]
    fn a_saved_state_loads_back() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(load(dir.path()).expect("no cache is fine").is_none());
        let state = sample();
        save(dir.path(), &state).expect("saved");
        let loaded = load(dir.path()).expect("loads").expect("present");
        assert_eq!(loaded.revision(), 100);
        assert_eq!(loaded.license_count(), 100);
        assert_eq!(loaded.image().licenses.len(), state.image().licenses.len());
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().expect("dir");
        save(dir.path(), &sample()).expect("saved");
        let file = dir.path().join(FILE);
        let good = std::fs::read(&file).expect("read");

        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        std::fs::write(&file, &flipped).expect("written");
        assert!(matches!(load(dir.path()), Err(CacheError::Checksum)));

        std::fs::write(&file, &good[..good.len() / 2]).expect("written");
        assert!(matches!(load(dir.path()), Err(CacheError::Truncated)));

        std::fs::write(&file, b"garbage").expect("written");
        assert!(matches!(load(dir.path()), Err(CacheError::BadMagic)));
    }

    #[test]
    fn a_crash_mid_write_leaves_the_old_cache() {
        let dir = tempfile::tempdir().expect("dir");
        save(dir.path(), &sample()).expect("saved");
        std::fs::write(dir.path().join(".tmpHALF"), b"LSDPCACHE half").expect("stray temp");
        assert_eq!(
            load(dir.path())
                .expect("loads")
                .expect("present")
                .license_count(),
            100
        );
    }
}
