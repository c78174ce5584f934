//! Cost per request in the test host (Wasmtime, as Kong runs filters), on
//! the reference traffic mix, side by side in one run: the no-op filter,
//! which measures the host itself, the floor (kong_looker's host calls and
//! nothing else), and `dist/kong_looker.wasm`, whose added cost is the
//! difference. `bench/engine.py` measures the same in Kong's real engine. Each iteration runs 1,000 requests and then
//! moves the clock a second, so kong_looker's ticks cut and send the batch
//! (to a real HTTP sink): the figure includes delivery, not just capture.
//!
//! `make build && cargo bench --bench host`
//!
//! To weigh two builds of the filter against each other in the same run,
//! name the others in `KONG_LOOKER_BENCH_FILTERS` as `label=path.wasm`,
//! separated by commas; each is measured beside the shipped one.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::{Filter, Kong, Profile, Request, Sink, compile};
use kong_looker_testsupport as support;
use support::traffic;

fn host(c: &mut Criterion) {
    let noop =
        compile::wasip1_filter(&compile::own_filter("noop")).expect("build the no-op filter");
    let noop = Filter::load(noop).expect("load the no-op filter");
    let floor = compile::wasip1_filter(&compile::own_filter("floor")).expect("build the floor");
    let floor = Filter::load(floor).expect("load the floor");
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
    let mut filters = vec![
        ("noop".to_string(), noop),
        ("floor".to_string(), floor),
        ("kong_looker".to_string(), looker),
    ];
    for spec in std::env::var("KONG_LOOKER_BENCH_FILTERS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let (label, path) = spec
            .split_once('=')
            .expect("KONG_LOOKER_BENCH_FILTERS takes label=path.wasm");
        // Loaded under the shipped name, as Kong would load the file.
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let filter =
            Filter::from_bytes("kong_looker", &bytes).unwrap_or_else(|e| panic!("{path}: {e}"));
        filters.push((format!("kong_looker_{label}"), filter));
    }
    let mut kongs = Vec::new();
    for (name, filter) in &filters {
        let mut b = Kong::builder(filter, Profile::Kong39);
        for chain in &chains {
            b = b.chain(chain);
        }
        kongs.push((name.as_str(), b.build()));
    }
    let block = |kong: &mut Kong| {
        for r in &requests {
            black_box(kong.request(0, r).status);
        }
        kong.advance(Duration::from_secs(1));
    };
    alternating_blocks(&mut kongs, requests.len(), block);
    let mut group = c.benchmark_group("host_request");
    group.throughput(criterion::Throughput::Elements(requests.len() as u64));
    for (name, kong) in &mut kongs {
        group.bench_function(*name, |b| b.iter(|| block(kong)));
    }
    group.finish();
    for (name, kong) in &kongs {
        assert!(kong.traps().is_empty(), "{name}: {:?}", kong.traps());
    }
    let delivered = support::Collected::from(&sink.received()).rows.len();
    eprintln!("the kong_looker builds delivered {delivered} records to the sink during the bench");
}

/// Criterion measures one filter after another, and this machine's speed
/// drifts by 2x over minutes. Blocks of the same requests, run in turn on
/// every filter, see the same drift; the fastest block of each is the
/// figure least disturbed by the rest of the machine.
fn alternating_blocks(kongs: &mut [(&str, Kong)], per_block: usize, block: impl Fn(&mut Kong)) {
    const ROUNDS: usize = 40;
    let mut fastest = vec![Duration::MAX; kongs.len()];
    for _ in 0..ROUNDS {
        for ((_, kong), best) in kongs.iter_mut().zip(&mut fastest) {
            let start = std::time::Instant::now();
            block(kong);
            *best = (*best).min(start.elapsed());
        }
    }
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / per_block as f64;
    let base = per_request(fastest[0]);
    eprintln!("fastest of {ROUNDS} alternating blocks of {per_block} requests:");
    for ((name, _), best) in kongs.iter().zip(&fastest) {
        let us = per_request(*best);
        eprintln!(
            "  {name:<24} {us:6.2} us per request, {:+6.2} us over {}",
            us - base,
            kongs[0].0
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(8));
    targets = host
}
criterion_main!(benches);
