//! What the collector's integration tests add to the shared test support
//! (`kong-looker-testsupport`: the collector process, HTTP calls, the
//! stores): a producer that follows the codec's producer rules, and one
//! test per store.
// Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kong_looker_proto::builder::Producer;
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_proto::wire;
use kong_looker_proto::{BatchBuilder, BuilderOptions, SealedBatch};

pub use kong_looker_testsupport::collector::{TOKEN, post_batch, post_http_log};

/// The key the tests' producers sign with, as the collector is given it.
pub const KEY: &[u8] = kong_looker_testsupport::collector::KEY.as_bytes();
pub use kong_looker_testsupport::stores;
pub use kong_looker_testsupport::{Collector, Reply, TestStore, get, now_ms, post};

/// The collector's own metrics, read with its own parser.
pub trait Metrics {
    /// `GET /metrics`, one sample's value (0 when absent).
    fn metric(&self, sample: &str) -> f64;
}

impl Metrics for Collector {
    fn metric(&self, sample: &str) -> f64 {
        let text = get(&self.url("/metrics")).1;
        kong_looker_collector::metrics::sample(&text, sample).unwrap_or(0.0)
    }
}

/// A producer following the codec's producer rules over the reference mix,
/// with requests that started a minute ago.
pub struct TestProducer {
    pub builder: BatchBuilder,
    pub mix: Mix,
    pub producer: Producer,
}

impl TestProducer {
    /// A producer with instance id `n`; `request_ids` makes the mix carry
    /// Kong request ids.
    pub fn new(n: u8, request_ids: bool) -> Self {
        let producer = Producer {
            instance_id: [n; 16],
            node_id: "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa".into(),
            filter_version: "0.1.0".into(),
            kong_version: "3.9.1".into(),
        };
        let mix = Mix::new(MixParams {
            seed: u64::from(n),
            start_ms: now_ms() - 60_000,
            request_ids,
            ..MixParams::default()
        });
        TestProducer {
            builder: BatchBuilder::new(&producer, BuilderOptions::default()),
            mix,
            producer,
        }
    }

    /// The next batch of `n` records.
    pub fn batch(&mut self, n: usize) -> SealedBatch {
        for req in self.mix.take_requests(n) {
            let record = self.mix.record(&req);
            self.builder.append(&record).unwrap();
        }
        self.builder.seal(now_ms(), &Default::default())
    }

    /// Sends until the collector acknowledges, as the filter does
    /// (including redefining after a 409), then records the ack.
    pub fn deliver(&mut self, c: &Collector, batch: SealedBatch, deadline: Duration) {
        CollectorAt(c.addr).deliver_within(self, batch, deadline);
    }
}

/// Sends to an address rather than a [`Collector`], so a test can restart
/// the process while producers keep sending.
pub struct CollectorAt(pub std::net::SocketAddr);

impl CollectorAt {
    /// Delivers as [`TestProducer::deliver`] does; returns the failed tries.
    pub fn deliver(&self, p: &mut TestProducer, batch: SealedBatch) -> u32 {
        self.deliver_within(p, batch, Duration::from_secs(60))
    }

    /// [`CollectorAt::deliver`] with a deadline.
    pub fn deliver_within(
        &self,
        p: &mut TestProducer,
        mut batch: SealedBatch,
        within: Duration,
    ) -> u32 {
        let url = format!("http://{}/v1/batches", self.0);
        let deadline = Instant::now() + within;
        let mut failures = 0;
        loop {
            let auth =
                kong_looker_proto::signing::authorization(KEY, now_ms() / 1000, &batch.bytes);
            let r = post(
                &url,
                &[
                    ("content-type", wire::BATCH_CONTENT_TYPE),
                    ("authorization", &auth),
                ],
                &batch.bytes,
            );
            match r.status {
                200..=299 => {
                    p.builder.acknowledge(batch.ack);
                    return failures;
                }
                409 if r.body.contains(wire::UNKNOWN_DICTIONARY) => {
                    p.builder.reset_acknowledgements();
                    assert!(p.builder.redefine_all(&mut batch));
                }
                0 | 429 | 503 => {}
                s => panic!("batch {} refused with {s}: {}", batch.sequence, r.body),
            }
            failures += 1;
            assert!(Instant::now() < deadline, "never acknowledged: {r:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Three producers (seeds `seed` to `seed + 2`, with request ids) each
/// deliver `batches` batches of 100 records to `addr`, paced so the stream
/// spans `fault`, which runs 400 ms in; returns the deliveries that failed
/// and were retried.
pub fn stream_through(
    addr: std::net::SocketAddr,
    seed: u8,
    batches: usize,
    fault: impl FnOnce(),
) -> u32 {
    let producers: Vec<_> = (0..3u8)
        .map(|n| {
            std::thread::spawn(move || {
                let mut p = TestProducer::new(seed + n, true);
                let mut failures = 0;
                for _ in 0..batches {
                    let batch = p.batch(100);
                    failures += CollectorAt(addr).deliver(&mut p, batch);
                    std::thread::sleep(Duration::from_millis(40));
                }
                failures
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    fault();
    producers.into_iter().map(|t| t.join().unwrap()).sum()
}

/// `kong-looker-collector serve` on a free port with `args`, which must
/// refuse to start: what it wrote to stderr.
pub fn serve_refused(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("KONG_LOOKER_SIGNING_KEY")
        .env_remove("KONG_LOOKER_HTTP_LOG_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve started with {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A path under the target folder's temp area, for SQLite files.
pub fn sqlite_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// One test per store: SQLite, PostgreSQL and ClickHouse.
#[macro_export]
macro_rules! on_every_store {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn sqlite() {
                ($body)(support::TestStore::sqlite());
            }
            #[test]
            fn postgres() {
                ($body)(support::TestStore::postgres());
            }
            #[test]
            fn clickhouse() {
                ($body)(support::TestStore::clickhouse());
            }
        }
    };
}

/// Defines one test per SQL store: `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn sqlite() {
                ($body)(support::TestStore::sqlite());
            }
            #[test]
            fn postgres() {
                ($body)(support::TestStore::postgres());
            }
        }
    };
}
