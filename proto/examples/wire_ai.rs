//! Bytes per record on the wire with AI Gateway traffic: the reference mix
//! without it (which the AI columns must not grow), the mix with its AI
//! share as a whole, and what an AI record adds (the same records encoded
//! again without their AI figures, the difference over the AI records).
//! Steady state over 120,000 records in batches of 1,000, every batch
//! acknowledged, request ids off.
//!
//! `cargo run --release -p kong-looker-proto --features mix --example wire_ai`

use kong_looker_proto::BatchBuilder;
use kong_looker_proto::builder::{BuilderOptions, Producer};
use kong_looker_proto::mix::{AI_SHARE, Mix, MixParams};
use kong_looker_proto::v1::Drops;
use kong_looker_proto::{AiRef, Record};

const RECORDS: usize = 120_000;
const BATCH: usize = 1000;

fn producer() -> Producer {
    Producer {
        instance_id: [7; 16],
        node_id: "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa".into(),
        filter_version: env!("CARGO_PKG_VERSION").into(),
        kong_version: "3.9.1".into(),
    }
}

/// (bytes with the AI figures, bytes without them, AI records).
fn run(ai_share: f64) -> (usize, usize, usize) {
    let mut mix = Mix::new(MixParams {
        ai_share,
        ..MixParams::default()
    });
    let mut with = BatchBuilder::new(&producer(), BuilderOptions::default());
    let mut without = BatchBuilder::new(&producer(), BuilderOptions::default());
    let (mut a, mut b, mut ai) = (0, 0, 0);
    for _ in 0..RECORDS / BATCH {
        for r in mix.take_requests(BATCH) {
            let record: Record<'_> = mix.record(&r);
            ai += usize::from(record.ai.is_some());
            with.append(&record).expect("append");
            without
                .append(&Record {
                    ai: None::<&AiRef<'_>>,
                    ..record
                })
                .expect("append");
        }
        for (builder, total) in [(&mut with, &mut a), (&mut without, &mut b)] {
            let sealed = builder.seal(1_767_614_460_000, &Drops::default());
            *total += sealed.bytes.len();
            builder.acknowledge(sealed.ack);
        }
    }
    (a, b, ai)
}

fn main() {
    let per = |bytes: usize| bytes as f64 / RECORDS as f64;
    let (plain, _, _) = run(0.0);
    let (with, without, ai) = run(AI_SHARE);
    println!("| traffic | B/record |");
    println!("|---|---:|");
    println!("| reference mix, no AI traffic | {:.2} |", per(plain));
    println!(
        "| reference mix with {:.0}% AI Gateway traffic, as a whole | {:.2} |",
        AI_SHARE * 100.0,
        per(with)
    );
    println!(
        "| the same records without their AI figures | {:.2} |",
        per(without)
    );
    println!(
        "| what an AI record's figures add ({ai} AI records) | {:.2} |",
        (with - without) as f64 / ai as f64
    );
}
