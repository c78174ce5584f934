//! Times appends on the warm reference mix (for profiling the builder).
//! `cargo run --release -p kong-looker-proto --features mix --example append_profile`
use kong_looker_proto::BatchBuilder;
use kong_looker_proto::builder::{BuilderOptions, Producer};
use kong_looker_proto::mix::Mix;
use kong_looker_proto::v1::Drops;
use std::time::Instant;

fn main() {
    let mut mix = Mix::reference();
    let mut builder = BatchBuilder::new(&Producer::default(), BuilderOptions::default());
    let requests = mix.take_requests(100_000);
    for chunk in requests.chunks(1000) {
        for r in chunk {
            builder.append(&mix.record(r)).expect("append");
        }
        let s = builder.seal(1_767_614_460_000, &Drops::default());
        builder.acknowledge(s.ack);
    }
    let rounds = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let records: Vec<_> = requests[..1000].iter().map(|r| mix.record(r)).collect();
    let t = Instant::now();
    for _ in 0..rounds * 100 {
        for chunk in records.chunks(1000) {
            for r in chunk {
                builder.append(r).expect("append");
            }
            let s = builder.seal(1_767_614_460_000, &Drops::default());
            builder.acknowledge(s.ack);
        }
    }
    let n = rounds * 100 * records.len();
    println!(
        "{:.0} ns per record",
        t.elapsed().as_nanos() as f64 / n as f64
    );
}
