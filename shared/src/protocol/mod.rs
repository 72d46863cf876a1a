//! The control plane ↔ data plane wire protocol (DESIGN §5), versioned and typed.
//!
//! One websocket per data plane over mutually authenticated TLS. Every message is one binary
//! frame: a one-byte [`Encoding`] tag followed by the JSON of a [`DpToCp`] or [`CpToDp`]
//! (externally tagged, `{"snapshot_chunk": {…}}`: serde reads that form as it streams, where an
//! internally tagged one would first be buffered whole, a second copy of every snapshot chunk),
//! compressed when that makes it smaller: with zstd for a data plane that says (protocol minor
//! 1 or later) it reads it, with deflate otherwise and from data planes. A data plane opens with [`Hello`]; the control
//! plane answers with either the changes after the data plane's revision or a full snapshot in
//! bounded chunks, then pushes [`CpToDp::Deltas`] as writes commit. Requests that need the
//! source of truth (activation) carry a correlation id and an absolute deadline, and are
//! answered with a typed [`AuthorityError`] when refused.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

mod authority;

pub use authority::AuthorityError;

use crate::credential::ApiCredential;
use crate::key::LicenseKey;
use crate::model::{Customer, License, Product};
use crate::signing::ClusterKey;

/// Bumped on incompatible changes; a control plane refuses another major version. 3: absolute
/// request deadlines and typed authority errors.
pub const PROTOCOL_MAJOR: u32 = 3;
/// Bumped on compatible additions. 1: data planes read zstd frames ([`Codec::Zstd`]).
pub const PROTOCOL_MINOR: u32 = 1;
/// Entities per snapshot chunk: keeps every frame far below the frame limit.
pub const SNAPSHOT_CHUNK: usize = 2_000;
/// Largest frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Frames smaller than this are sent uncompressed.
const COMPRESS_ABOVE: usize = 512;

/// The first message of a data plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub node_id: Uuid,
    pub hostname: String,
    /// The data plane's software version.
    pub version: String,
    pub protocol_major: u32,
    pub protocol_minor: u32,
    /// The revision the data plane has applied; `None` when it has no state at all.
    pub revision: Option<i64>,
    /// The license set (database) that revision belongs to; see [`CpToDp::SnapshotBegin`].
    #[serde(default)]
    pub cluster_id: Option<Uuid>,
}

/// A device asking a data plane for a seat, forwarded to the control plane's authority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRequest {
    pub license_key: LicenseKey,
    pub product_id: Option<Uuid>,
    pub device_id: String,
    pub device_name: Option<String>,
    pub client_facts: serde_json::Value,
}

/// The control plane's decision on an activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationGranted {
    /// The license as it is after the decision (with the device among its active ones).
    pub license: License,
    pub already_activated: bool,
    pub device_id: String,
    pub device_name: Option<String>,
    pub activated_at: chrono::DateTime<chrono::Utc>,
}

/// What a data plane sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpToCp {
    Hello(Hello),
    /// The data plane has applied everything up to `revision`.
    Applied {
        revision: i64,
    },
    Activate {
        correlation_id: Uuid,
        /// When the data plane stops waiting (UNIX time in milliseconds): the control plane
        /// never executes the request after it, so a client told 503 is never activated later.
        deadline_unix_ms: i64,
        request: ActivationRequest,
    },
    Deactivate {
        correlation_id: Uuid,
        deadline_unix_ms: i64,
        license_key: LicenseKey,
        device_id: String,
    },
    /// Telemetry: requests served and licenses validated since the previous batch. Resent
    /// until acknowledged; `sequence` lets the control plane count each batch once.
    Usage(UsageBatch),
}

/// One telemetry batch of a data plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBatch {
    /// Unique per data plane and increasing, also across restarts.
    pub sequence: i64,
    /// Requests served, per month (`"YYYY-MM"`).
    pub requests: Vec<(String, i64)>,
    /// The latest time each license was validated.
    pub validated: Vec<(Uuid, chrono::DateTime<chrono::Utc>)>,
}

/// One replicated change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Product(Product),
    Customer(Customer),
    License(License),
    /// A LicenseSpring API credential, shared key included.
    Credential(ApiCredential),
    /// A signing key of the cluster, private half included.
    SigningKey(ClusterKey),
    /// The entity `id` of kind `kind` was deleted at `revision`.
    Deleted {
        kind: EntityKind,
        id: Uuid,
        revision: i64,
    },
}

impl Change {
    pub fn revision(&self) -> i64 {
        match self {
            Change::Product(product) => product.revision,
            Change::Customer(customer) => customer.revision,
            Change::License(license) => license.revision,
            Change::Credential(credential) => credential.revision,
            Change::SigningKey(key) => key.revision,
            Change::Deleted { revision, .. } => *revision,
        }
    }
}

/// A kind of replicated entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Product,
    Customer,
    License,
    Credential,
    SigningKey,
}

/// What a control plane sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpToDp {
    /// The connection is refused (e.g. an incompatible protocol); it closes after this.
    Rejected {
        reason: String,
    },
    /// A full snapshot follows, consistent as of `revision`; replace all state with it.
    /// `cluster_id` names the license set, for the data plane to say when it resumes.
    SnapshotBegin {
        revision: i64,
        cluster_id: Uuid,
    },
    SnapshotChunk {
        changes: Vec<Change>,
    },
    SnapshotEnd {
        revision: i64,
    },
    /// Changes in revision order, up to and including `revision`.
    Deltas {
        revision: i64,
        changes: Vec<Change>,
    },
    ActivateResult {
        correlation_id: Uuid,
        outcome: Result<ActivationGranted, AuthorityError>,
    },
    DeactivateResult {
        correlation_id: Uuid,
        outcome: Result<License, AuthorityError>,
    },
    /// The telemetry batch `sequence` is counted (or was already).
    UsageAck {
        sequence: i64,
    },
}

/// How a frame's payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    Json = 0,
    DeflateJson = 1,
    ZstdJson = 2,
}

/// How to compress the frames sent to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Every version reads it.
    Deflate,
    /// A snapshot chunk of 2,000 licenses compresses in 1.2 ms instead of deflate's 3.9, reads
    /// 1.4 ms faster, and is 26% smaller (micro-benchmarks `protocol/*`).
    Zstd,
}

impl Codec {
    /// The best codec a data plane speaking `protocol_minor` of this major reads.
    pub fn for_data_plane(protocol_minor: u32) -> Self {
        if protocol_minor >= 1 {
            Codec::Zstd
        } else {
            Codec::Deflate
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("empty frame")]
    Empty,
    #[error("unknown frame encoding {0}")]
    UnknownEncoding(u8),
    #[error("frame larger than {MAX_FRAME_BYTES} bytes once decompressed")]
    TooLarge,
    #[error("corrupt compressed frame: {0}")]
    Compression(std::io::Error),
    #[error("not a valid message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes one message as a frame any peer reads (deflate when compressed).
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    encode_with(message, Codec::Deflate)
}

/// Encodes one message as a frame, compressed with `codec` when that makes it smaller.
pub fn encode_with<T: Serialize>(message: &T, codec: Codec) -> Vec<u8> {
    let json = serde_json::to_vec(message).expect("protocol messages always serialize");
    if json.len() > COMPRESS_ABOVE {
        let compressed = match codec {
            Codec::Deflate => deflate(&json),
            Codec::Zstd => compress_zstd(&json),
        };
        if let Some(frame) = compressed.filter(|frame| frame.len() < json.len()) {
            return frame;
        }
    }
    let mut frame = Vec::with_capacity(json.len() + 1);
    frame.push(Encoding::Json as u8);
    frame.extend_from_slice(&json);
    frame
}

fn deflate(json: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::DeflateEncoder::new(
        vec![Encoding::DeflateJson as u8],
        flate2::Compression::fast(),
    );
    encoder.write_all(json).ok()?;
    encoder.finish().ok()
}

fn compress_zstd(json: &[u8]) -> Option<Vec<u8>> {
    let mut encoder =
        zstd::stream::write::Encoder::new(vec![Encoding::ZstdJson as u8], ZSTD_LEVEL).ok()?;
    encoder.write_all(json).ok()?;
    encoder.finish().ok()
}

/// zstd's fastest standard level: the snapshot is bound by CPU, not by the wire.
const ZSTD_LEVEL: i32 = 1;

/// Decodes one frame.
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, ProtocolError> {
    let (&tag, payload) = frame.split_first().ok_or(ProtocolError::Empty)?;
    match tag {
        t if t == Encoding::Json as u8 => Ok(serde_json::from_slice(payload)?),
        t if t == Encoding::DeflateJson as u8 => {
            let json = inflate(flate2::read::DeflateDecoder::new(payload))?;
            Ok(serde_json::from_slice(&json)?)
        }
        t if t == Encoding::ZstdJson as u8 => {
            let decoder = zstd::stream::read::Decoder::with_buffer(payload)
                .map_err(ProtocolError::Compression)?;
            let json = inflate(decoder)?;
            Ok(serde_json::from_slice(&json)?)
        }
        other => Err(ProtocolError::UnknownEncoding(other)),
    }
}

/// Reads a decompressing reader to the end, refusing more than [`MAX_FRAME_BYTES`] (a
/// compression bomb stops there).
fn inflate(decoder: impl Read) -> Result<Vec<u8>, ProtocolError> {
    let mut json = Vec::new();
    let limit = u64::try_from(MAX_FRAME_BYTES).unwrap_or(u64::MAX) + 1;
    decoder
        .take(limit)
        .read_to_end(&mut json)
        .map_err(ProtocolError::Compression)?;
    if json.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge);
    }
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    #[test]
    fn messages_round_trip_small_and_compressed() {
        let hello = DpToCp::Hello(Hello {
            node_id: Uuid::new_v4(),
            hostname: "dp-1".into(),
            version: "0.1.0".into(),
            protocol_major: PROTOCOL_MAJOR,
            protocol_minor: PROTOCOL_MINOR,
            revision: Some(42),
            cluster_id: Some(Uuid::new_v4()),
        });
        let frame = encode(&hello);
        assert_eq!(frame[0], Encoding::Json as u8);
        assert_eq!(decode::<DpToCp>(&frame).expect("decodes"), hello);

        let now = chrono::Utc::now();
        let changes: Vec<Change> = (0..200)
            .map(|_| Change::License(fixtures::license(now)))
            .collect();
        let chunk = CpToDp::SnapshotChunk { changes };
        let json_len = serde_json::to_vec(&chunk).expect("json").len();
        for (codec, tag) in [
            (Codec::Deflate, Encoding::DeflateJson),
            (Codec::Zstd, Encoding::ZstdJson),
        ] {
            let frame = encode_with(&chunk, codec);
            assert_eq!(frame[0], tag as u8, "{codec:?}");
            assert!(frame.len() * 2 < json_len, "{} vs {json_len}", frame.len());
            assert_eq!(decode::<CpToDp>(&frame).expect("decodes"), chunk);
        }
        assert_eq!(encode(&chunk)[0], Encoding::DeflateJson as u8);
    }

    #[test]
    fn zstd_is_sent_only_to_data_planes_that_read_it() {
        assert_eq!(Codec::for_data_plane(0), Codec::Deflate);
        assert_eq!(Codec::for_data_plane(1), Codec::Zstd);
        assert_eq!(Codec::for_data_plane(PROTOCOL_MINOR), Codec::Zstd);
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        assert!(matches!(decode::<CpToDp>(&[]), Err(ProtocolError::Empty)));
        assert!(matches!(
            decode::<CpToDp>(&[9, 1, 2]),
            Err(ProtocolError::UnknownEncoding(9))
        ));
        assert!(matches!(
            decode::<CpToDp>(b"\x00{\"type\":\"nope\"}"),
            Err(ProtocolError::Json(_))
        ));
        assert!(matches!(
            decode::<CpToDp>(b"\x01not deflate at all"),
            Err(ProtocolError::Compression(_) | ProtocolError::Json(_))
        ));
        // A deflate bomb: 64 MiB of zeros in a few KiB.
        let mut bomb = flate2::write::DeflateEncoder::new(vec![1u8], flate2::Compression::best());
        bomb.write_all(&vec![b' '; 64 * 1024 * 1024])
            .expect("written");
        let bomb = bomb.finish().expect("finished");
        assert!(matches!(
            decode::<CpToDp>(&bomb),
            Err(ProtocolError::TooLarge)
        ));
        let mut bomb = vec![Encoding::ZstdJson as u8];
        bomb.extend(zstd::bulk::compress(&vec![b' '; 64 * 1024 * 1024], 19).expect("compressed"));
        assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
        assert!(matches!(
            decode::<CpToDp>(&bomb),
            Err(ProtocolError::TooLarge)
        ));
        assert!(matches!(
            decode::<CpToDp>(b"\x02not zstd at all"),
            Err(ProtocolError::Compression(_))
        ));
    }
}
