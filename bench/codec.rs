//! Codec throughput on the reference mix, side by side with Kong's http-log
//! JSON for the same requests.
//!
//! `cargo bench --bench codec` (or `make bench`). Each group reports records
//! per second; the bytes per record of both encodings print first.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kong_looker_proto::builder::{BuilderOptions, Producer};
use kong_looker_proto::mix::{Mix, Request};
use kong_looker_proto::v1::Drops;
use kong_looker_proto::{BatchBuilder, BatchReader, Dictionary};
use kong_looker_testsupport::http_log;

const BATCH: usize = 1000;
const CUT: i64 = 1_767_614_460_000;

fn producer() -> Producer {
    Producer {
        instance_id: [3; 16],
        node_id: "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa".into(),
        filter_version: env!("CARGO_PKG_VERSION").into(),
        kong_version: "3.9.1".into(),
    }
}

/// A builder that has seen (and had acknowledged) a minute of traffic, so
/// that it is in its steady state, plus the next batch of requests.
fn warm() -> (Mix, BatchBuilder, Dictionary, Vec<Request>) {
    let mut mix = Mix::reference();
    let mut builder = BatchBuilder::new(&producer(), BuilderOptions::default());
    let reader = BatchReader::default();
    let mut dict = Dictionary::new(0);
    for _ in 0..120 {
        for r in mix.take_requests(BATCH) {
            builder.append(&mix.record(&r)).expect("append");
        }
        let sealed = builder.seal(CUT, &Drops::default());
        let batch = reader.decode(&sealed.bytes).expect("decode");
        dict.apply(&batch, reader.limits()).expect("apply");
        builder.acknowledge(sealed.ack);
    }
    let requests = mix.take_requests(BATCH);
    (mix, builder, dict, requests)
}

fn codec(c: &mut Criterion) {
    let (mix, mut builder, mut dict, requests) = warm();
    let entries: Vec<http_log::Entry> = requests.iter().map(|r| http_log::entry(&mix, r)).collect();
    let json: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| serde_json::to_vec(e).expect("json"))
        .collect();
    let json_bytes: usize = json.iter().map(Vec::len).sum();

    for r in &requests {
        builder.append(&mix.record(r)).expect("append");
    }
    let sealed = builder.seal(CUT, &Drops::default());
    let reader = BatchReader::default();
    let batch = reader.decode(&sealed.bytes).expect("decode");
    dict.apply(&batch, reader.limits()).expect("apply");
    builder.acknowledge(sealed.ack);
    eprintln!(
        "bytes per record: protobuf {:.2}, http-log JSON {:.0} ({:.0}x smaller)",
        sealed.bytes.len() as f64 / BATCH as f64,
        json_bytes as f64 / BATCH as f64,
        json_bytes as f64 / sealed.bytes.len() as f64
    );

    // The machines are noisy, so the ratio comes from both sides run in
    // alternating blocks in one process, taking the fastest batch of each.
    // Blocks, not single batches: 2 MB of JSON output between two protobuf
    // batches would evict the dictionary from the cache and measure that.
    let records: Vec<_> = requests.iter().map(|r| mix.record(r)).collect();
    let mut out = Vec::with_capacity(json_bytes + BATCH);
    let (mut pb_best, mut json_best) = (f64::MAX, f64::MAX);
    for _ in 0..15 {
        for _ in 0..20 {
            let t = Instant::now();
            for r in &records {
                builder.append(black_box(r)).expect("append");
            }
            let sealed = builder.seal(CUT, &Drops::default());
            builder.acknowledge(sealed.ack);
            black_box(sealed.bytes.len());
            pb_best = pb_best.min(t.elapsed().as_secs_f64());
        }
        for _ in 0..20 {
            let t = Instant::now();
            out.clear();
            for e in &entries {
                serde_json::to_writer(&mut out, black_box(e)).expect("json");
                out.push(b',');
            }
            black_box(out.len());
            json_best = json_best.min(t.elapsed().as_secs_f64());
        }
    }
    eprintln!(
        "encode, fastest of 300 batches of {BATCH} each, in alternating blocks: \
         protobuf {:.0} ns/record, http-log JSON {:.0} ns/record: {:.1}x faster",
        pb_best * 1e9 / BATCH as f64,
        json_best * 1e9 / BATCH as f64,
        json_best / pb_best
    );

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(BATCH as u64));
    // Both sides start from records already in memory: the filter's capture
    // and Kong's serializer table are not part of the encoding.
    group.bench_function("protobuf_batch", |b| {
        b.iter(|| {
            for r in &records {
                builder.append(black_box(r)).expect("append");
            }
            let sealed = builder.seal(CUT, &Drops::default());
            builder.acknowledge(sealed.ack);
            black_box(sealed.bytes.len())
        })
    });
    group.bench_function("http_log_json", |b| {
        let mut out = Vec::with_capacity(json_bytes + BATCH);
        b.iter(|| {
            out.clear();
            out.push(b'[');
            for e in &entries {
                serde_json::to_writer(&mut out, black_box(e)).expect("json");
                out.push(b',');
            }
            black_box(out.len())
        })
    });
    group.finish();

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("protobuf_validate_rows", |b| {
        b.iter(|| {
            let batch = reader.decode(black_box(&sealed.bytes)).expect("decode");
            dict.apply(&batch, reader.limits()).expect("apply");
            let bytes: u64 = batch
                .rows(&dict)
                .expect("rows")
                .map(|r| r.response_bytes)
                .sum();
            black_box(bytes)
        })
    });
    group.bench_function("http_log_json", |b| {
        b.iter(|| {
            let total: u64 = json
                .iter()
                .map(|j| {
                    serde_json::from_slice::<http_log::Entry>(black_box(j))
                        .expect("json")
                        .response
                        .size
                })
                .sum();
            black_box(total)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = codec
}
criterion_main!(benches);
