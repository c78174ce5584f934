//! Capture cost per request, natively: picking the headers
//! (`request_facts`), assembling the record from Kong's properties
//! (`capture`) and appending it to the worker's outbox, on the reference
//! mix as Kong would present it. The host-call cost is in `bench/host.rs`.
//!
//! `cargo bench --bench capture`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = capture
}
criterion_main!(benches);
