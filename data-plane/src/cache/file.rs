//! The disk cache file: [`save`] writes the whole state, [`load`] reads it back. A corrupt
//! cache is reported (a precise [`CacheError`]) and ignored by the caller, which then syncs
//! afresh.
//!
//! Atomic write: a temp file in the same directory, fsync, rename over `state.cache`, fsync of
//! the directory. A crash at any point leaves either the old file or the new one, never a mix;
//! a stray temp file from a crash is never read, and is removed on the next [`load`].
//!
//! File format (version 3): a 53-byte header, then the payload.
//!
//! | bytes | what |
//! | --- | --- |
//! | 9 | magic `LSDPCACHE` |
//! | 4 | format version, u32 little-endian |
//! | 8 | payload length in bytes, u64 little-endian |
//! | 32 | SHA-256 of the payload |
//!
//! The payload is raw deflate of newline-delimited JSON: one line of metadata (revision, license
//! set, counts), then one line per signing key, per API credential, per product, per customer,
//! per license. The file holds secrets (signing keys, shared keys): it is written with mode 0600. Lines let both sides
//! stream: saving never builds the file (or a copy of the state) in memory, and loading parses
//! one entity at a time into the new state. JSON rather than a binary format because licenses
//! carry free-form JSON (`features`, `metadata`) that non-self-describing formats cannot hold;
//! deflate brings a license to about 140 bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};

use license_shared::protocol::Change;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::store::{SnapshotBuilder, State};

const MAGIC: &[u8; 9] = b"LSDPCACHE";
const VERSION: u32 = 3;
pub(super) const HEADER_LEN: usize = MAGIC.len() + 4 + 8 + 32;
const FILE: &str = "state.cache";
/// Temp files are `.state.cache.<random>.tmp`: hidden, and never mistaken for the cache.
const TEMP_PREFIX: &str = ".state.cache.";
const TEMP_SUFFIX: &str = ".tmp";

/// Why a cache file could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The file system refused (permissions, disk full, I/O error).
    #[error("cannot read or write the cache: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with the magic bytes: not a cache file.
    #[error("not a cache file (bad magic)")]
    BadMagic,
    /// Written by another version of the data plane.
    #[error("cache format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    /// The file ends before its header or payload does.
    #[error("the cache file is truncated: {found} of {expected} bytes")]
    Truncated {
        /// The length the header promises (or the header's own length).
        expected: u64,
        /// The length found.
        found: u64,
    },
    /// The file goes on after its payload.
    #[error("the cache file has {extra} unexpected bytes after its payload")]
    TrailingBytes {
        /// How many.
        extra: u64,
    },
    /// The payload is not what was written: the file is corrupt.
    #[error("the cache checksum does not match: the file is corrupt")]
    ChecksumMismatch,
    /// The payload is intact but is not a state this build understands.
    #[error("the cache payload cannot be decoded: {0}")]
    Undecodable(String),
    /// The state could not be serialized (a bug, never expected).
    #[error("the state cannot be encoded: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The payload's first line.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Meta {
    revision: i64,
    cluster_id: Option<Uuid>,
    signing_keys: u64,
    credentials: u64,
    products: u64,
    customers: u64,
    licenses: u64,
}

/// The cache file in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// Writes `state` to `dir` atomically; returns the file's size in bytes. Streams: memory use
/// does not grow with the state. Takes seconds for a million licenses, so call it off the async
/// runtime (as [`CacheWriter`] does); readers and the writer of the store are not blocked.
pub fn save(dir: &Path, state: &State) -> Result<u64, CacheError> {
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    let file = temp.as_file_mut();
    // The header comes last, once the payload's length and digest are known.
    file.write_all(&[0; HEADER_LEN])?;
    let mut sink = Digesting::new(BufWriter::with_capacity(1 << 20, &mut *file));
    let encoder = flate2::write::DeflateEncoder::new(&mut sink, flate2::Compression::fast());
    let mut json = BufWriter::with_capacity(1 << 16, encoder);
    write_payload(&mut json, state)?;
    json.into_inner()
        .map_err(|error| error.into_error())?
        .finish()?;
    let (length, digest) = sink.finish()?;

    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&length.to_le_bytes());
    header.extend_from_slice(&digest);
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&header)?;
    file.sync_all()?;
    temp.persist(path(dir)).map_err(|error| error.error)?;
    // The rename is durable only once the directory is.
    File::open(dir)?.sync_all()?;
    Ok(HEADER_LEN as u64 + length)
}

fn write_payload(out: &mut impl Write, state: &State) -> Result<(), CacheError> {
    let meta = Meta {
        revision: state.revision(),
        cluster_id: state.cluster_id(),
        signing_keys: state.keyring().signing_key_count() as u64,
        credentials: state.keyring().credential_count() as u64,
        products: state.product_count() as u64,
        customers: state.customer_count() as u64,
        licenses: state.license_count() as u64,
    };
    write_line(out, &meta)?;
    for key in state.keyring().signing_keys() {
        write_line(out, key)?;
    }
    for credential in state.keyring().credentials() {
        write_line(out, credential)?;
    }
    for product in state.products() {
        write_line(out, product)?;
    }
    for customer in state.customers() {
        write_line(out, customer)?;
    }
    for license in state.licenses() {
        write_line(out, license)?;
    }
    Ok(())
}

fn write_line(out: &mut impl Write, value: &impl Serialize) -> Result<(), CacheError> {
    // Compact JSON never contains a raw newline (it is escaped inside strings).
    serde_json::to_writer(&mut *out, value).map_err(|error| match error.io_error_kind() {
        Some(kind) => CacheError::Io(io::Error::new(kind, error)),
        None => CacheError::Encode(error),
    })?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Reads the cache in `dir`: `None` when there is none, an error when it cannot be used.
/// Checks the whole file (length, checksum) before decoding any of it. Also removes temp
/// files that a crash mid-save left behind, so call it before any [`save`] into `dir`.
pub fn load(dir: &Path) -> Result<Option<State>, CacheError> {
    remove_stray_temp_files(dir);
    let mut file = match File::open(path(dir)) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let (length, digest) = read_header(&mut file)?;

    // First pass: the payload is complete and is what was written.
    let mut check = Digesting::new(io::sink());
    io::copy(&mut file, &mut check)?;
    let (found, actual) = check.finish()?;
    if found < length {
        return Err(CacheError::Truncated {
            expected: HEADER_LEN as u64 + length,
            found: HEADER_LEN as u64 + found,
        });
    }
    if found > length {
        return Err(CacheError::TrailingBytes {
            extra: found - length,
        });
    }
    if actual != digest {
        return Err(CacheError::ChecksumMismatch);
    }

    // Second pass: decode. A helper thread inflates and parses while this one builds the
    // state (parsing is the larger half; together they take about half the time).
    file.seek(SeekFrom::Start(HEADER_LEN as u64))?;
    let compressed = BufReader::with_capacity(1 << 20, file.take(length));
    let mut lines = Lines {
        reader: BufReader::with_capacity(1 << 16, flate2::bufread::DeflateDecoder::new(compressed)),
        line: Vec::new(),
        number: 0,
    };
    let meta: Meta = lines
        .next()?
        .ok_or_else(|| CacheError::Undecodable("empty payload".into()))?;
    let mut builder = SnapshotBuilder::new(meta.cluster_id);
    std::thread::scope(|scope| {
        let (batches, received) = mpsc::sync_channel(4);
        let decoder = std::thread::Builder::new()
            .name("cache-decoder".into())
            .spawn_scoped(scope, move || lines.decode(meta, batches))?;
        for batch in received {
            builder.add(batch);
        }
        decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    Ok(Some(builder.build(meta.revision)))
}

/// Reads and checks the header; returns the payload's length and digest.
fn read_header(file: &mut File) -> Result<(u64, [u8; 32]), CacheError> {
    let mut header = [0; HEADER_LEN];
    let mut found = 0;
    while found < HEADER_LEN {
        match file.read(&mut header[found..]) {
            Ok(0) => break,
            Ok(n) => found += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.into()),
        }
    }
    // A short file that starts like a cache file is a truncated one; anything else is not ours.
    let magic = found.min(MAGIC.len());
    if header[..magic] != MAGIC[..magic] {
        return Err(CacheError::BadMagic);
    }
    if found < HEADER_LEN {
        return Err(CacheError::Truncated {
            expected: HEADER_LEN as u64,
            found: found as u64,
        });
    }
    let version = u32::from_le_bytes(field(&header, MAGIC.len()));
    if version != VERSION {
        return Err(CacheError::UnsupportedVersion(version));
    }
    let length = u64::from_le_bytes(field(&header, MAGIC.len() + 4));
    let digest = field(&header, MAGIC.len() + 4 + 8);
    Ok((length, digest))
}

/// The `N` bytes of the header at `at` (in bounds: the header's layout is fixed).
fn field<const N: usize>(header: &[u8; HEADER_LEN], at: usize) -> [u8; N] {
    let mut field = [0; N];
    field.copy_from_slice(&header[at..at + N]);
    field
}

/// Reads the payload's lines.
struct Lines<R> {
    reader: R,
    line: Vec<u8>,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    /// The next line as a `T`; `None` at the end.
    fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, CacheError> {
        self.line.clear();
        let read = self.reader.read_until(b'\n', &mut self.line);
        let read = read.map_err(|error| match error.kind() {
            // What the decompressor says of a corrupt stream.
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
                CacheError::Undecodable(format!("corrupt compressed payload: {error}"))
            }
            _ => CacheError::Io(error),
        })?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        serde_json::from_slice(&self.line)
            .map(Some)
            .map_err(|error| CacheError::Undecodable(format!("line {}: {error}", self.number)))
    }

    /// Decodes the entities `meta` announces and sends them on in batches; stops early, without
    /// an error, if the receiver is gone.
    fn decode(mut self, meta: Meta, batches: SyncSender<Vec<Change>>) -> Result<(), CacheError> {
        const BATCH: usize = 1_024;
        let mut batch = Vec::with_capacity(BATCH);
        let mut add = |change: Change| -> bool {
            batch.push(change);
            batch.len() < BATCH
                || batches
                    .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                    .is_ok()
        };
        let complete = self.read_all(meta.signing_keys, "signing keys", |k| {
            add(Change::SigningKey(k))
        })? && self.read_all(meta.credentials, "credentials", |c| {
            add(Change::Credential(c))
        })? && self
            .read_all(meta.products, "products", |p| add(Change::Product(p)))?
            && self.read_all(meta.customers, "customers", |c| add(Change::Customer(c)))?
            && self.read_all(meta.licenses, "licenses", |l| add(Change::License(l)))?;
        if !complete {
            return Ok(());
        }
        if self.next::<serde_json::Value>()?.is_some() {
            return Err(CacheError::Undecodable(format!(
                "line {}: more entities than the counts say",
                self.number
            )));
        }
        // A receiver gone now lost nothing it needed.
        let _ = batches.send(batch);
        Ok(())
    }

    /// Reads `count` lines of `T`, handing each to `each` while it returns true; says whether
    /// all were handed over.
    fn read_all<T: DeserializeOwned>(
        &mut self,
        count: u64,
        what: &str,
        mut each: impl FnMut(T) -> bool,
    ) -> Result<bool, CacheError> {
        for read in 0..count {
            let entity = self.next()?.ok_or_else(|| {
                CacheError::Undecodable(format!("the payload ends after {read} of {count} {what}"))
            })?;
            if !each(entity) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Removes temp files a crash mid-save left in `dir`; best effort.
fn remove_stray_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::info!(file = %name, "removed a temp file left by a crash"),
                Err(error) => {
                    tracing::warn!(file = %name, %error, "cannot remove a stray temp file")
                }
            }
        }
    }
}

/// A writer that passes bytes on while counting them and computing their SHA-256.
struct Digesting<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Digesting<W> {
    fn new(inner: W) -> Self {
        Digesting {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Flushes; returns how many bytes went through and their digest.
    fn finish(mut self) -> io::Result<(u64, [u8; 32])> {
        self.inner.flush()?;
        Ok((self.written, self.hasher.finalize().into()))
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(bytes)?;
        let passed = bytes.get(..written).unwrap_or(bytes);
        self.hasher.update(passed);
        self.written += passed.len() as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::tests::{customer, license, product, realistic_license};
    use license_shared::{Customer, License, Product};
    use std::time::Instant;

    /// A state with a few of everything, as of revision 100.
    fn sample() -> State {
        let products = [product(1, "alpha"), product(2, "beta")];
        let customers = [customer(3), customer(4)];
        let mut builder = SnapshotBuilder::new(Some(Uuid::new_v4()));
        builder.add(products.iter().cloned().map(Change::Product).collect());
        builder.add(customers.iter().cloned().map(Change::Customer).collect());
        builder.add(
            (0..100)
                .map(|n| {
                    let license = realistic_license(n, products[0].id, customers[1].id);
                    Change::License(License {
                        notes: Some("line one\nline two \"quoted\"".to_owned()),
                        ..license
                    })
                })
                .collect(),
        );
        builder.build(100)
    }

    fn assert_same(loaded: &State, state: &State) {
        assert_eq!(loaded.revision(), state.revision());
        assert_eq!(loaded.cluster_id(), state.cluster_id());
        assert!(loaded.has_state());
        assert_eq!(loaded.license_count(), state.license_count());
        assert_eq!(loaded.product_count(), state.product_count());
        assert_eq!(loaded.customer_count(), state.customer_count());
        for license in state.licenses() {
            assert_eq!(loaded.license(&license.key), Some(license));
            assert_eq!(loaded.license_by_id(license.id), Some(license));
        }
        for product in state.products() {
            assert_eq!(loaded.product_by_code(&product.code), Some(product));
        }
        for customer in state.customers() {
            assert_eq!(loaded.customer(customer.id), Some(customer));
        }
    }

    fn saved() -> (tempfile::TempDir, State, Vec<u8>) {
        let dir = tempfile::tempdir().expect("dir");
        let state = sample();
        let size = save(dir.path(), &state).expect("saved");
        let bytes = std::fs::read(path(dir.path())).expect("read");
        assert_eq!(size, bytes.len() as u64);
        (dir, state, bytes)
    }

    pub(crate) fn load_bytes(dir: &Path, bytes: &[u8]) -> Result<Option<State>, CacheError> {
        std::fs::write(path(dir), bytes).expect("written");
        load(dir)
    }

    /// A well-formed file around any payload bytes.
    fn file_with_payload(payload: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(payload));
        bytes.extend_from_slice(payload);
        bytes
    }

    fn deflate(raw: &[u8]) -> Vec<u8> {
        let mut encoder =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(raw).expect("compressed");
        encoder.finish().expect("compressed")
    }

    #[test]
    fn a_saved_state_loads_back() {
        let (dir, state, _) = saved();
        let loaded = load(dir.path()).expect("loads").expect("present");
        assert_same(&loaded, &state);

        // Saving again replaces the file.
        let mut builder = SnapshotBuilder::new(None);
        builder.push(Change::License(license(7)));
        let smaller = builder.build(7);
        save(dir.path(), &smaller).expect("saved again");
        assert_same(
            &load(dir.path()).expect("loads").expect("present"),
            &smaller,
        );
    }

    #[test]
    fn an_empty_state_round_trips() {
        let dir = tempfile::tempdir().expect("dir");
        let empty = SnapshotBuilder::new(None).build(0);
        save(dir.path(), &empty).expect("saved");
        assert_same(&load(dir.path()).expect("loads").expect("present"), &empty);
    }

    #[test]
    fn no_file_is_no_cache() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(load(dir.path()).expect("no cache is fine").is_none());
    }

    #[test]
    fn a_truncated_file_is_detected() {
        let (dir, _, good) = saved();
        let total = good.len() as u64;
        let dir = dir.path();
        assert!(matches!(
            load_bytes(dir, &good[..good.len() / 2]),
            Err(CacheError::Truncated { expected, found })
                if expected == total && found == total / 2
        ));
        assert!(matches!(
            load_bytes(dir, &good[..good.len() - 1]),
            Err(CacheError::Truncated { .. })
        ));
        assert!(matches!(
            load_bytes(dir, &good[..20]),
            Err(CacheError::Truncated { expected, found: 20 }) if expected == HEADER_LEN as u64
        ));
        assert!(matches!(
            load_bytes(dir, &good[..4]),
            Err(CacheError::Truncated { .. })
        ));
        assert!(matches!(
            load_bytes(dir, b""),
            Err(CacheError::Truncated { .. })
        ));
    }

    #[test]
    fn a_flipped_byte_is_detected() {
        let (dir, _, good) = saved();
        let dir = dir.path();
        // Anywhere in the payload, or in the stored digest.
        for at in [HEADER_LEN, good.len() / 2, good.len() - 1, HEADER_LEN - 1] {
            let mut flipped = good.clone();
            flipped[at] ^= 0x01;
            assert!(
                matches!(load_bytes(dir, &flipped), Err(CacheError::ChecksumMismatch)),
                "flipped byte {at}"
            );
        }
        let mut flipped = good.clone();
        flipped[0] ^= 0x01;
        assert!(matches!(
            load_bytes(dir, &flipped),
            Err(CacheError::BadMagic)
        ));
        let mut flipped = good.clone();
        flipped[MAGIC.len()] ^= 0x04;
        assert!(matches!(
            load_bytes(dir, &flipped),
            Err(CacheError::UnsupportedVersion(7))
        ));
        let mut longer = good.clone();
        longer.extend_from_slice(b"junk");
        assert!(matches!(
            load_bytes(dir, &longer),
            Err(CacheError::TrailingBytes { extra: 4 })
        ));
        // The intact file still loads.
        assert!(load_bytes(dir, &good).expect("loads").is_some());
    }

    #[test]
    fn garbage_is_not_a_cache() {
        let dir = tempfile::tempdir().expect("dir");
        let dir = dir.path();
        assert!(matches!(
            load_bytes(
                dir,
                b"garbage, not a cache at all, long enough to hold a header"
            ),
            Err(CacheError::BadMagic)
        ));
        assert!(matches!(
            load_bytes(dir, b"garbage"),
            Err(CacheError::BadMagic)
        ));
    }

    #[test]
    fn an_intact_but_undecodable_payload_is_reported() {
        let dir = tempfile::tempdir().expect("dir");
        let dir = dir.path();
        // Not deflate at all.
        assert!(matches!(
            load_bytes(dir, &file_with_payload(&[0xff; 64])),
            Err(CacheError::Undecodable(_))
        ));
        // Deflate of something that is not a state.
        assert!(matches!(
            load_bytes(dir, &file_with_payload(&deflate(b"{\"hello\": 1}\n"))),
            Err(CacheError::Undecodable(_))
        ));
        assert!(matches!(
            load_bytes(dir, &file_with_payload(&deflate(b""))),
            Err(CacheError::Undecodable(_))
        ));
        // Counts that do not match the lines.
        let meta = br#"{"revision":1,"cluster_id":null,"signing_keys":0,"credentials":0,"products":0,"customers":0,"licenses":2}"#;
        let mut payload = meta.to_vec();
        payload.push(b'\n');
        payload.extend_from_slice(&serde_json::to_vec(&license(1)).expect("json"));
        payload.push(b'\n');
        assert!(matches!(
            load_bytes(dir, &file_with_payload(&deflate(&payload))),
            Err(CacheError::Undecodable(message)) if message.contains("1 of 2 licenses")
        ));
    }

    #[test]
    fn a_crash_mid_write_leaves_the_old_cache() {
        let (dir, state, _) = saved();
        let dir = dir.path();
        // What a crash mid-save leaves: a partial temp file next to the intact cache.
        let stray = dir.join(format!("{TEMP_PREFIX}crashed{TEMP_SUFFIX}"));
        std::fs::write(&stray, &MAGIC[..5]).expect("stray temp");
        let unrelated = dir.join("node-id");
        std::fs::write(&unrelated, "keep me").expect("other file");

        assert_same(&load(dir).expect("loads").expect("present"), &state);
        assert!(!stray.exists(), "the stray temp file is cleaned up");
        assert!(unrelated.exists());

        // A save that fails (here: the directory is gone) leaves no partial cache behind.
        let gone = dir.join("missing");
        assert!(matches!(save(&gone, &state), Err(CacheError::Io(_))));
        assert!(load(&gone).expect("no cache").is_none());
    }

    fn measure(licenses: i64) {
        let products: Vec<Product> = (0..10).map(|n| product(n, &format!("p{n}"))).collect();
        let customers: Vec<Customer> = (0..1_000).map(customer).collect();
        let mut builder = SnapshotBuilder::new(Some(Uuid::new_v4()));
        builder.add(products.iter().cloned().map(Change::Product).collect());
        builder.add(customers.iter().cloned().map(Change::Customer).collect());
        for n in 0..licenses {
            let product = products[n as usize % products.len()].id;
            let customer = customers[n as usize % customers.len()].id;
            builder.push(Change::License(realistic_license(n, product, customer)));
        }
        let state = builder.build(licenses);
        let dir = tempfile::tempdir().expect("dir");

        let started = Instant::now();
        let size = save(dir.path(), &state).expect("saved");
        let saved = started.elapsed();
        let started = Instant::now();
        let loaded = load(dir.path()).expect("loads").expect("present");
        let loaded_in = started.elapsed();
        println!(
            "{licenses} licenses: save {saved:?}, load {loaded_in:?}, file {size} bytes \
             ({:.1} MiB, {} bytes per license)",
            size as f64 / (1024.0 * 1024.0),
            size / licenses as u64
        );
        assert_eq!(loaded.license_count(), state.license_count());
    }

    #[test]
    #[ignore = "a measurement: run with `cargo test --release -p data-plane --lib cache::tests::measure -- --ignored --nocapture`"]
    fn measure_100_000() {
        measure(100_000);
    }

    #[test]
    #[ignore = "a measurement: run with `cargo test --release -p data-plane --lib cache::tests::measure -- --ignored --nocapture`"]
    fn measure_1_000_000() {
        measure(1_000_000);
    }
}
