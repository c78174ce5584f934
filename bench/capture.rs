//! Capture cost per request, natively: picking the headers
//! (`request_facts`), assembling the record from Kong's properties
//! (`capture`) and appending it to the worker's outbox, on the reference
//! mix as Kong would present it; and at high cardinality, callers whole
//! against callers by key; and the outbox's push with the collector away,
//! its backlog at the buffer's cap, against the same with the collector
//! answering. The host-call cost is in `bench/host.rs`.
//!
//! `cargo bench --bench capture`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kong_looker_core::outbox::Outbox;
use kong_looker_proto::mix::{CARDINALITIES, MixParams};
use kong_looker_testsupport::native;

fn capture(c: &mut Criterion) {
    let requests = native::bench_requests();
    let mut capturers = native::capturers();
    let mut outbox = native::outbox();
    let mut now = 1_767_614_400_000i64;
    let mut group = c.benchmark_group("capture");
    group.throughput(criterion::Throughput::Elements(requests.len() as u64));
    let mut map = Vec::new();
    group.bench_function("facts_capture_push", |b| {
        b.iter(|| {
            // The host copies its map into one reused buffer, as the
            // plugin server does.
            native::capture_all(&mut capturers, &requests, &mut map, now, |r| {
                outbox.push(r, now)
            });
            now += 1000;
            // Keep the outbox from filling: a collector that answers at once.
            black_box(native::deliver_all(&mut outbox, now));
        })
    });
    group.finish();
}

/// The plugin server's capture at high cardinality, callers whole against
/// callers by key (the outbox's builder asked first), side by side on the
/// same requests: what `Capturer::capture_into` saves it.
fn callers(c: &mut Criterion) {
    let (_, consumers, addresses) = CARDINALITIES[1];
    let requests = native::requests(
        MixParams {
            consumers,
            addresses,
            ..MixParams::default()
        },
        50_000,
    );
    let mut group = c.benchmark_group("capture_high");
    group.throughput(criterion::Throughput::Elements(requests.len() as u64));
    let mut map = Vec::new();
    for by_key in [false, true] {
        let mut capturers = native::capturers();
        let mut outbox = native::outbox();
        let mut now = 1_767_614_400_000i64;
        let name = if by_key { "by_key" } else { "whole" };
        group.bench_function(name, |b| {
            b.iter(|| {
                if by_key {
                    native::capture_all_into(&mut capturers, &requests, &mut map, now, &mut outbox);
                } else {
                    native::capture_all(&mut capturers, &requests, &mut map, now, |r| {
                        outbox.push(r, now)
                    });
                }
                now += 1000;
                black_box(native::deliver_all(&mut outbox, now));
            })
        });
    }
    group.finish();
}

/// Capture and push with the default limits, a second of request time
/// per 1,000 requests: the collector answering every batch, and the
/// collector away, so that cut batches pile up to the buffer's cap and the
/// oldest are dropped. The difference is what a backlog costs each push.
fn backlog(c: &mut Criterion) {
    let requests = native::bench_requests();
    let mut group = c.benchmark_group("outbox_backlog");
    group.throughput(criterion::Throughput::Elements(requests.len() as u64));
    let mut map = Vec::new();
    for away in [false, true] {
        let mut capturers = native::capturers();
        let mut outbox = native::default_outbox();
        let mut now = 1_767_614_400_000i64;
        let mut second = |outbox: &mut Outbox, now: &mut i64| {
            native::capture_all(&mut capturers, &requests, &mut map, *now, |r| {
                outbox.push(r, *now)
            });
            *now += 1000;
            if away {
                outbox.tick(*now);
            } else {
                black_box(native::deliver_all(outbox, *now));
            }
        };
        // To the cap first: some 4 MiB of batches.
        for _ in 0..600 {
            second(&mut outbox, &mut now);
        }
        eprintln!(
            "outbox_backlog, collector {}: {} batches pending",
            if away { "away" } else { "answering" },
            outbox.pending_batches()
        );
        let name = if away {
            "collector_away"
        } else {
            "collector_answers"
        };
        group.bench_function(name, |b| b.iter(|| second(&mut outbox, &mut now)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = capture, callers, backlog
}
criterion_main!(benches);
