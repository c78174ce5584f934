//! Load for a running collector: several producers send signed
//! steady-state batches of the reference mix over HTTP, retrying as the
//! filter does, and the end-to-end rate is reported once every batch is
//! acknowledged.
//!
//! ```text
//! kong-looker-collector serve --signing-key $KEY --allow-unauthenticated &
//! cargo run --release -p kong-looker-collector --example load -- \
//!     --url http://127.0.0.1:9400 --key $KEY --producers 4 --batches 100
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use kong_looker_proto::builder::{BuilderOptions, Producer};
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_proto::v1::Drops;
use kong_looker_proto::{BatchBuilder, signing};

#[derive(Debug, Parser)]
struct Args {
    /// The collector.
    #[arg(long, default_value = "http://127.0.0.1:9400")]
    url: String,
    /// The signing key.
    #[arg(long, env = "KONG_LOOKER_SIGNING_KEY")]
    key: String,
    /// Concurrent producers (filter instances).
    #[arg(long, default_value_t = 4)]
    producers: u8,
    /// Batches per producer.
    #[arg(long, default_value_t = 50)]
    batches: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 1000)]
    records: usize,
}

fn main() {
    let args = Args::parse();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let started = Instant::now();
    let threads: Vec<_> = (0..args.producers)
        .map(|n| {
            let (url, key) = (format!("{}/v1/batches", args.url), args.key.clone());
            let (batches, records) = (args.batches, args.records);
            std::thread::spawn(move || {
                let producer = Producer {
                    instance_id: rand_id(n),
                    node_id: format!("load-{n}"),
                    filter_version: "load".into(),
                    kong_version: "3.9.1".into(),
                };
                let mut mix = Mix::new(MixParams {
                    seed: u64::from(n) + 1,
                    start_ms: now - 600_000,
                    ..MixParams::default()
                });
                let mut builder = BatchBuilder::new(&producer, BuilderOptions::default());
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let mut retries = 0u64;
                for _ in 0..batches {
                    for r in mix.take_requests(records) {
                        builder.append(&mix.record(&r)).expect("append");
                    }
                    let mut batch = builder.seal(now, &Drops::default());
                    loop {
                        let t = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs() as i64;
                        let auth = signing::authorization(key.as_bytes(), t, &batch.bytes);
                        let reply = agent
                            .post(&url)
                            .header("content-type", "application/x-protobuf")
                            .header("authorization", &auth)
                            .send(&batch.bytes[..]);
                        match reply {
                            Ok(r) if r.status().is_success() => {
                                builder.acknowledge(batch.ack);
                                break;
                            }
                            Ok(mut r) if r.status() == 409 => {
                                let body = r.body_mut().read_to_string().unwrap_or_default();
                                assert!(body.contains("unknown_dictionary"), "{body}");
                                builder.reset_acknowledgements();
                                builder.redefine_all(&mut batch);
                            }
                            Ok(r) if r.status().is_client_error() && r.status() != 429 => {
                                panic!("batch {} refused: {}", batch.sequence, r.status())
                            }
                            _ => {}
                        }
                        retries += 1;
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                retries
            })
        })
        .collect();
    let retries: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let secs = started.elapsed().as_secs_f64();
    let rows = usize::from(args.producers) * args.batches * args.records;
    println!(
        "{rows} records in {} batches from {} producers in {secs:.2} s: {:.0} records/s acknowledged ({retries} retries)",
        usize::from(args.producers) * args.batches,
        args.producers,
        rows as f64 / secs
    );
}

/// A distinct instance id per run and producer.
fn rand_id(n: u8) -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut id = nanos.to_le_bytes();
    id[15] = n;
    id
}
