//! Criterion micro-benchmarks of the hot pieces (issue 6): license-key parsing, the shared
//! `evaluate` rule and the verify answer it feeds, data-plane store lookups at 100,000 and
//! 1,000,000 licenses, applying a one-license delta at 1,000,000, and the cluster protocol's
//! encoding and decoding of a delta and of a snapshot chunk (the data plane's sync path), and
//! signing and verifying a license document (Ed25519 over canonical JSON).
//!
//! `cargo bench -p bench --bench micro` (add `-- <filter>` for a subset; `scripts/bench` runs
//! them with short warm-up and measurement times).

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use license_shared::protocol::{self, Change, Codec, CpToDp, SNAPSHOT_CHUNK};
use license_shared::public_api::VerifyAnswer;
use license_shared::signing::{self, ClusterKey};
use license_shared::{Check, LicenseKey, document, evaluate};
use uuid::Uuid;

use bench::synthetic;

fn keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("key");
    let canonical = LicenseKey::generate(None).into_string();
    let sloppy = format!(" {} ", canonical.to_ascii_lowercase().replace('0', "o"));
    let prefixed = format!("ACME-{canonical}");
    group.bench_function("parse canonical", |b| {
        b.iter(|| LicenseKey::parse(black_box(&canonical)))
    });
    group.bench_function("parse lower-case, look-alikes, spaces", |b| {
        b.iter(|| LicenseKey::parse(black_box(&sloppy)))
    });
    group.bench_function("parse with prefix", |b| {
        b.iter(|| LicenseKey::parse(black_box(&prefixed)))
    });
    group.bench_function("parse malformed", |b| {
        b.iter(|| LicenseKey::parse(black_box("ABCDE-FGHJK-MNPQR-STVWX")))
    });
    group.bench_function("generate", |b| b.iter(|| LicenseKey::generate(None)));
    group.finish();
}

fn evaluation(c: &mut Criterion) {
    let mut group = c.benchmark_group("evaluate");
    let license = synthetic::license(1, Uuid::new_v4(), Uuid::new_v4(), true);
    let now = Utc::now();
    let plain = Check::at(now);
    let product = Check::for_product(now, license.product_id);
    let device = Check {
        device_id: Some(synthetic::DEVICE),
        ..product
    };
    group.bench_function("plain", |b| {
        b.iter(|| evaluate(black_box(&license), black_box(&plain)))
    });
    group.bench_function("product and device", |b| {
        b.iter(|| evaluate(black_box(&license), black_box(&device)))
    });
    group.bench_function("verify answer built and encoded", |b| {
        b.iter(|| {
            let answer = VerifyAnswer::new(black_box(&license), black_box(&plain));
            serde_json::to_vec(&answer)
        })
    });
    group.finish();
}

fn store(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(50);
    for count in [100_000usize, 1_000_000] {
        let (store, sample) = synthetic::store(count, 4_096);
        let keys: Vec<LicenseKey> = sample.iter().map(|l| l.key.clone()).collect();
        let missing = LicenseKey::generate(None);
        let mut next = 0usize;
        group.bench_function(format!("lookup hit, {count} licenses"), |b| {
            b.iter(|| {
                next = (next + 1) % keys.len();
                let state = store.load();
                state.license(black_box(&keys[next])).map(|l| l.revision)
            })
        });
        group.bench_function(format!("lookup miss, {count} licenses"), |b| {
            b.iter(|| store.load().license(black_box(&missing)).is_some())
        });
        if count == 1_000_000 {
            let mut revision = store.revision();
            let mut pick = 0usize;
            group.bench_function("apply a one-license delta, 1000000 licenses", |b| {
                b.iter_batched(
                    || {
                        revision += 1;
                        pick = (pick + 1) % sample.len();
                        let mut changed = sample[pick].clone();
                        changed.max_activations = Some((revision % 1_000) as i32 + 1);
                        changed.revision = revision;
                        (revision, vec![Change::License(changed)])
                    },
                    |(revision, changes)| store.apply_deltas(revision, changes),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

fn wire(c: &mut Criterion) {
    let mut group = c.benchmark_group("protocol");
    let (product, customer) = (Uuid::new_v4(), Uuid::new_v4());
    let one = CpToDp::Deltas {
        revision: 7,
        changes: vec![Change::License(synthetic::license(
            7, product, customer, true,
        ))],
    };
    let chunk = CpToDp::SnapshotChunk {
        changes: (0..SNAPSHOT_CHUNK as i64)
            .map(|n| Change::License(synthetic::license(n, product, customer, n % 10 == 0)))
            .collect(),
    };
    let one_frame = protocol::encode_with(&one, Codec::Zstd);
    println!(
        "protocol frames: one-license delta {} bytes; snapshot chunk of {SNAPSHOT_CHUNK} licenses: \
         JSON {} bytes, deflate {} bytes, zstd {} bytes",
        one_frame.len(),
        serde_json::to_vec(&chunk).map_or(0, |json| json.len()),
        protocol::encode_with(&chunk, Codec::Deflate).len(),
        protocol::encode_with(&chunk, Codec::Zstd).len(),
    );
    group.bench_function("encode a one-license delta", |b| {
        b.iter(|| protocol::encode_with(black_box(&one), Codec::Zstd))
    });
    group.bench_function("decode a one-license delta", |b| {
        b.iter(|| protocol::decode::<CpToDp>(black_box(&one_frame)))
    });
    group.sample_size(20);
    group.bench_function(
        format!("JSON of a snapshot chunk ({SNAPSHOT_CHUNK} licenses), uncompressed"),
        |b| b.iter(|| serde_json::to_vec(black_box(&chunk))),
    );
    for (name, codec) in [("deflate", Codec::Deflate), ("zstd", Codec::Zstd)] {
        let chunk_frame = protocol::encode_with(&chunk, codec);
        group.bench_function(
            format!("encode a snapshot chunk ({SNAPSHOT_CHUNK} licenses), {name}"),
            |b| b.iter(|| protocol::encode_with(black_box(&chunk), codec)),
        );
        group.bench_function(
            format!("decode a snapshot chunk ({SNAPSHOT_CHUNK} licenses), {name}"),
            |b| b.iter(|| protocol::decode::<CpToDp>(black_box(&chunk_frame))),
        );
    }
    group.finish();
}

fn documents(c: &mut Criterion) {
    let mut group = c.benchmark_group("document");
    let (product_id, customer_id) = (Uuid::new_v4(), Uuid::new_v4());
    let license = synthetic::license(7, product_id, customer_id, true);
    let (product, customer) = (
        synthetic::product(product_id),
        synthetic::customer(customer_id),
    );
    let key = ClusterKey::new(Uuid::new_v4(), signing::generate_key(), true, 1);
    let verifying = [key.key.verifying_key()];
    let text = document::sign(
        document::license_payload(&license, &product, &customer),
        &key,
    );
    group.bench_function("sign a license document", |b| {
        b.iter(|| {
            document::sign(
                document::license_payload(black_box(&license), &product, &customer),
                &key,
            )
        })
    });
    group.bench_function("verify a license document", |b| {
        b.iter(|| document::verify(black_box(&text), &verifying))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = micro;
    config = config();
    targets = keys, evaluation, store, wire, documents
}
criterion_main!(micro);
