//! Instructions per record of both encoders, for `valgrind --tool=callgrind`
//! (instruction counts repeat exactly, whatever else the machine does).
//!
//! `encode_cost protobuf N` or `encode_cost json N` encodes N batches of
//! 1,000 reference-mix records after the same setup; the difference between
//! N = 50 and N = 0 is the encoding's cost. See bench/RESULTS.md.

use std::hint::black_box;

use kong_looker_proto::BatchBuilder;
use kong_looker_proto::builder::{BuilderOptions, Producer};
use kong_looker_proto::mix::Mix;
use kong_looker_proto::v1::Drops;
use kong_looker_testsupport::http_log;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_default();
    let batches: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let mut mix = Mix::reference();
    let mut builder = BatchBuilder::new(&Producer::default(), BuilderOptions::default());
    for _ in 0..120 {
        for r in mix.take_requests(1000) {
            builder.append(&mix.record(&r)).expect("append");
        }
        let sealed = builder.seal(1_767_614_460_000, &Drops::default());
        builder.acknowledge(sealed.ack);
    }
    let requests = mix.take_requests(1000);
    let records: Vec<_> = requests.iter().map(|r| mix.record(r)).collect();
    let entries: Vec<_> = requests.iter().map(|r| http_log::entry(&mix, r)).collect();
    let mut out = Vec::with_capacity(4 << 20);
    for _ in 0..batches {
        match which.as_str() {
            "protobuf" => {
                for r in &records {
                    builder.append(black_box(r)).expect("append");
                }
                let sealed = builder.seal(1_767_614_460_000, &Drops::default());
                builder.acknowledge(sealed.ack);
                black_box(sealed.bytes.len());
            }
            _ => {
                out.clear();
                for e in &entries {
                    serde_json::to_writer(&mut out, black_box(e)).expect("json");
                    out.push(b',');
                }
                black_box(out.len());
            }
        }
    }
}
