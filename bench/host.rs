//! Cost per request in the test host (Wasmtime, as Kong runs filters), on
//! the reference traffic mix, side by side in one run: the no-op filter,
//! which measures the host itself, and `dist/kong_looker.wasm`, whose added
//! cost is the difference. Each iteration runs 1,000 requests and then
//! moves the clock a second, so kong_looker's ticks cut and send the batch
//! (to a real HTTP sink): the figure includes delivery, not just capture.
//!
//! `make build && cargo bench --bench host`

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::{Filter, Kong, Profile, Request, Sink, compile};
use support::traffic;

fn host(c: &mut Criterion) {
    let noop =
        compile::wasip1_filter(&compile::own_filter("noop")).expect("build the no-op filter");
    let noop = Filter::load(noop).expect("load the no-op filter");
    let looker = support::filter();
    let sink = Sink::start().expect("sink");
    let mut mix = Mix::new(MixParams {
        request_ids: true,
        ..MixParams::default()
    });
    let requests: Vec<Request> = mix
        .take_requests(1000)
        .iter()
        .map(|r| traffic::kong_request(&mix, r, Profile::Kong39).0)
        .collect();
    let chains = traffic::chains(&sink.address(), "");
    let mut kongs = Vec::new();
    for (name, filter) in [("noop", &noop), ("kong_looker", &looker)] {
        let mut b = Kong::builder(filter, Profile::Kong39);
        for chain in &chains {
            b = b.chain(chain);
        }
        kongs.push((name, b.build()));
    }
    let mut group = c.benchmark_group("host_request");
    group.throughput(criterion::Throughput::Elements(requests.len() as u64));
    for (name, kong) in &mut kongs {
        group.bench_function(*name, |b| {
            b.iter(|| {
                for r in &requests {
                    black_box(kong.request(0, r).status);
                }
                kong.advance(Duration::from_secs(1));
            })
        });
    }
    group.finish();
    let (_, looker_kong) = &kongs[1];
    assert!(looker_kong.traps().is_empty(), "{:?}", looker_kong.traps());
    let delivered = support::Collected::from(&sink.received()).rows.len();
    eprintln!("kong_looker delivered {delivered} records to the sink during the bench");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(8));
    targets = host
}
criterion_main!(benches);
