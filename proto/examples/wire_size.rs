//! Prints bytes per record on the wire for the reference mix, per batch
//! size: the first batch of a fresh producer, and the steady state over a
//! minute of traffic with every batch acknowledged. Everything counted.
//!
//! `cargo run --release -p kong-looker-proto --features mix --example wire_size`

use kong_looker_proto::BatchBuilder;
use kong_looker_proto::builder::{BuilderOptions, Producer};
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_proto::v1::Drops;

fn main() {
    println!(
        "| batch size | request ids | first batch B/record | steady state B/record (120,000 records) |"
    );
    println!("|---:|---|---:|---:|");
    for request_ids in [false, true] {
        for size in [100usize, 1000, 10_000] {
            let params = MixParams {
                request_ids,
                ..MixParams::default()
            };
            let mut mix = Mix::new(params);
            let producer = Producer {
                instance_id: [7; 16],
                node_id: "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa".into(),
                filter_version: env!("CARGO_PKG_VERSION").into(),
                kong_version: "3.9.1".into(),
            };
            let mut builder = BatchBuilder::new(&producer, BuilderOptions::default());
            let batches = 120_000 / size;
            let (mut total, mut first) = (0usize, 0usize);
            for b in 0..batches {
                for r in mix.take_requests(size) {
                    builder.append(&mix.record(&r)).expect("append");
                }
                let sealed = builder.seal(1_767_614_460_000, &Drops::default());
                if b == 0 {
                    first = sealed.bytes.len();
                }
                total += sealed.bytes.len();
                builder.acknowledge(sealed.ack);
            }
            println!(
                "| {size} | {} | {:.1} | {:.2} |",
                if request_ids { "yes" } else { "no" },
                first as f64 / size as f64,
                total as f64 / (batches * size) as f64
            );
        }
    }
}
