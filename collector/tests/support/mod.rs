//! Shared by the collector's integration tests: the real collector binary
//! as a child process, a producer that follows the codec's producer rules,
//! and the two stores, read back with their own clients.
#![allow(dead_code)]

pub mod stores;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kong_looker_proto::builder::Producer;
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_proto::wire;
use kong_looker_proto::{BatchBuilder, BuilderOptions, SealedBatch, signing};

pub use stores::TestStore;

/// The key the tests' producers sign with.
pub const KEY: &[u8] = b"collector-test-signing-key";
/// The token the tests' http-log posts carry.
pub const TOKEN: &str = "collector-test-http-log-token";

/// A running `kong-looker-collector serve`.
pub struct Collector {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its store.
    pub store: String,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// Whether it gets the batch key and the http-log token.
    credentials: (bool, bool),
}

impl Collector {
    /// Starts a collector on a free port over `store`.
    pub fn start(store: &str, extra: &[&str]) -> Collector {
        Collector::start_with_credentials(store, (true, true), extra)
    }

    /// Starts a collector that gets only the credentials asked for:
    /// (batch key, http-log token).
    pub fn start_with_credentials(
        store: &str,
        credentials: (bool, bool),
        extra: &[&str],
    ) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hmac.key"), KEY).unwrap();
        std::fs::write(dir.path().join("http-log.token"), format!("{TOKEN}\n")).unwrap();
        let mut c = Collector {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            store: store.to_owned(),
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            credentials,
        };
        c.spawn("127.0.0.1:0".parse().unwrap());
        c
    }

    fn spawn(&mut self, listen: SocketAddr) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"));
        command
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--store")
            .arg(&self.store);
        if self.credentials.0 {
            command
                .arg("--hmac-key-file")
                .arg(self.dir.path().join("hmac.key"));
        }
        if self.credentials.1 {
            command
                .arg("--http-log-token-file")
                .arg(self.dir.path().join("http-log.token"));
        }
        let mut child = command
            .args(&self.extra)
            .env_remove("KONG_LOOKER_SIGNING_KEY")
            .env_remove("KONG_LOOKER_HTTP_LOG_TOKEN")
            .env("KONG_LOOKER_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kong-looker-collector");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("collector did not start: {line:?}"));
        self.addr = addr;
        self.child = Some(child);
    }

    /// `http://addr`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then waits; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "collector ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same port and store.
    pub fn restart(&mut self) {
        self.kill9();
        let addr = self.addr;
        let deadline = Instant::now() + Duration::from_secs(10);
        // The port can linger briefly after a kill.
        loop {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => {
                    drop(l);
                    break;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("port {addr} stays busy: {e}"),
            }
        }
        self.spawn(addr);
    }

    /// `GET /metrics`, one sample's value (0 when absent).
    pub fn metric(&self, sample: &str) -> f64 {
        let text = get(&self.url("/metrics")).1;
        kong_looker_collector::metrics::sample(&text, sample).unwrap_or(0.0)
    }

    /// The data folder (for a SQLite file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A reply.
#[derive(Debug)]
pub struct Reply {
    /// Status; 0 when the connection failed.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// `Retry-After`.
    pub retry_after: Option<String>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `GET`; (status, body).
pub fn get(url: &str) -> (u16, String) {
    match agent().get(url).call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// `POST` with headers.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.send(body) {
        Ok(mut r) => Reply {
            status: r.status().as_u16(),
            retry_after: r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: r.body_mut().read_to_string().unwrap_or_default(),
        },
        Err(e) => Reply {
            status: 0,
            body: e.to_string(),
            retry_after: None,
        },
    }
}

/// Posts a batch, signed with `key` at the current time.
pub fn post_batch(c: &Collector, bytes: &[u8], key: &[u8]) -> Reply {
    let auth = signing::authorization(key, now_ms() / 1000, bytes);
    post(
        &c.url(wire::BATCHES_PATH),
        &[
            ("content-type", wire::BATCH_CONTENT_TYPE),
            ("authorization", &auth),
        ],
        bytes,
    )
}

/// Posts http-log JSON with the right token.
pub fn post_http_log(c: &Collector, json: &str) -> Reply {
    post(
        &c.url(wire::HTTP_LOG_PATH),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {TOKEN}")),
        ],
        json.as_bytes(),
    )
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
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

/// A path under the target folder's temp area, for SQLite files.
pub fn sqlite_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Defines one test per store: `<name>::sqlite` and `<name>::postgres`.
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
