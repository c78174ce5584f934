//! Capture cost per request, natively: picking the headers
//! (`request_facts`), assembling the record from Kong's properties
//! (`capture`) and appending it to the worker's outbox, on the reference
//! mix as Kong would present it. The host-call cost is in `bench/host.rs`.
//!
//! `cargo bench --bench capture`

use std::borrow::Cow;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kong_looker_core::capture::capturer::{Capturer, LogSource, PROPERTIES};
use kong_looker_core::capture::headers;
use kong_looker_core::config::Config;
use kong_looker_core::outbox::{Limits, Outbox};
use kong_looker_proto::builder::Producer;
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::Profile;
use kong_looker_testsupport as support;
use support::traffic;

/// Kong's side of one request, as the filter would read it.
struct Kong {
    chain: usize,
    header_map: Vec<u8>,
    /// Answers in [`PROPERTIES`] order, in an array rather than a map, so
    /// that the stand-in host costs little next to capture itself.
    properties: [Option<Vec<u8>>; PROPERTIES.len()],
    status: u16,
}

impl LogSource for Kong {
    fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let i = PROPERTIES.iter().position(|p| *p == name)?;
        self.properties[i].as_deref().map(Cow::Borrowed)
    }

    fn response_header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        (name == ":status").then(|| Cow::Owned(self.status.to_string().into_bytes()))
    }
}

fn capture(c: &mut Criterion) {
    let mut mix = Mix::new(MixParams {
        request_ids: true,
        ..MixParams::default()
    });
    let requests: Vec<Kong> = mix
        .take_requests(1000)
        .iter()
        .map(|r| {
            let (req, _) = traffic::kong_request(&mix, r, Profile::Kong39);
            Kong {
                chain: req.chain,
                header_map: headers::serialize(
                    req.headers
                        .iter()
                        .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
                ),
                properties: PROPERTIES.map(|p| req.properties.get(p).cloned()),
                status: req.response.status,
            }
        })
        .collect();
    let mut capturers: Vec<Capturer> = traffic::chains("127.0.0.1:9400", "")
        .iter()
        .enumerate()
        .map(|(i, c)| Capturer::new(Config::parse(c.as_bytes()).unwrap(), i as u64))
        .collect();
    let limits = Limits {
        max_records: 1000,
        max_bytes: 256 * 1024,
        flush_interval_ms: 1000,
        max_in_flight: 4,
        max_retry_age_ms: 300_000,
        max_buffer_bytes: 4 << 20,
        timeout_ms: 5000,
        spill: false,
    };
    let mut outbox = Outbox::new(&Producer::default(), limits, 7);
    let mut now = 1_767_614_400_000i64;
    let mut group = c.benchmark_group("capture");
    group.throughput(criterion::Throughput::Elements(requests.len() as u64));
    let mut map = Vec::new();
    group.bench_function("facts_capture_push", |b| {
        b.iter(|| {
            for k in &requests {
                let capturer = &mut capturers[k.chain];
                // The host copies its map into one reused buffer, as the
                // plugin server does.
                let mut buf = std::mem::take(&mut map);
                buf.clear();
                buf.extend_from_slice(&k.header_map);
                let facts = capturer.request_facts(buf, now);
                capturer.capture(&facts, k, now, |r| outbox.push(r, now));
                map = facts.into_map();
            }
            now += 1000;
            // Keep the outbox from filling: a collector that answers at once.
            outbox.tick(now);
            while let Some((seq, body)) = outbox.next_send(now) {
                black_box(body.len());
                outbox.sent(seq, seq as u32, now);
                outbox.answered(
                    seq as u32,
                    kong_looker_core::outbox::Reply::Status {
                        status: 204,
                        retry_after_s: None,
                        unknown_dictionary: false,
                    },
                    now,
                );
            }
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
