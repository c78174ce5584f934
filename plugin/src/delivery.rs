//! Delivery: one lane per collector destination, each the core's
//! [`Outbox`] (batching, retries, backoff, `Retry-After`, the memory cap,
//! counted drops) plus a thread that ships its sealed batches, signed,
//! over a native HTTP client (rustls for `https`). One call is in flight
//! per lane. With a spool (`-spool-dir`), what the outbox gives up on for
//! room or age goes to disk instead, and is sent from there once the
//! collector takes batches again, by this process or the next. Owns the
//! lanes, their threads and the bounded flush at shutdown; what a reply
//! means is the outbox's business.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kong_looker_core::config::Config;
use kong_looker_core::destination::Destination;
use kong_looker_core::outbox::{Limits, Outbox, Reply, ReplyCode, Stats};
use kong_looker_proto::builder::{Producer, SealedBatch};
use kong_looker_proto::wire;
use kong_looker_proto::{BatchReader, Record};

use crate::server::{log, log_limited};
use crate::spool::{self, Evicted, Spool};
use crate::transport::{self, Roots};
use kong_looker_core::log_limit::Kind;

/// How often an idle lane looks at its outbox (flush timers, backoffs).
const POLL: Duration = Duration::from_millis(20);

/// Wall clock, Unix ms: the outbox's clock and the batches' time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The outbox limits of a config; `spill` when a spool takes what the
/// outbox would drop.
pub fn limits(config: &Config, spill: bool) -> Limits {
    Limits {
        // One thread per lane makes one call at a time.
        max_in_flight: 1,
        spill,
        ..Limits::of(config)
    }
}

/// Where spools live and how large each may grow.
#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// The folder; each destination gets a subfolder.
    pub dir: PathBuf,
    /// Bytes per destination.
    pub max_bytes: u64,
}

struct State {
    outbox: Outbox,
    token: u32,
    instance_id: [u8; 16],
}

/// One destination's outbox and its sender.
pub struct Lane {
    destination: Destination,
    state: Mutex<State>,
    wake: Condvar,
    stop: AtomicBool,
    /// Touched by the lane's thread (and metrics), never by events.
    spool: Mutex<Option<Spool>>,
    /// Batch bytes sent, retries included.
    bytes_sent: AtomicU64,
}

impl Lane {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not stop capture: the outbox keeps its
        // invariants between calls.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where it goes.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Appends a captured record.
    pub fn push(&self, record: &Record<'_>) {
        let mut s = self.lock();
        s.outbox.push(record, now_ms());
        if s.outbox.has_spilled() {
            self.wake.notify_one();
        }
    }

    /// Counts a request that could not be captured.
    pub fn count_capture_error(&self) {
        self.lock().outbox.count_capture_error();
    }

    /// Counters so far, and the bytes held.
    pub fn stats(&self) -> (Stats, usize) {
        let s = self.lock();
        (s.outbox.stats().clone(), s.outbox.buffered_bytes())
    }

    /// The spool's (bytes, batches); zeros without one.
    pub fn spooled(&self) -> (u64, usize) {
        self.spool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or((0, 0), |s| (s.bytes(), s.len()))
    }

    /// Writes spilled batches to the spool; what it cannot keep is
    /// counted as dropped.
    fn keep(&self, batches: Vec<SealedBatch>) {
        if batches.is_empty() {
            return;
        }
        let instance = self.lock().instance_id;
        let mut spool = self.spool.lock().unwrap_or_else(PoisonError::into_inner);
        for b in batches {
            let kept = match spool.as_mut() {
                Some(sp) => sp.push(&b.bytes, &instance, b.sequence, b.record_count),
                None => Ok(vec![Evicted {
                    instance: spool::hex(&instance),
                    sequence: b.sequence,
                    records: b.record_count,
                    carried: BatchReader::default()
                        .decode(&b.bytes)
                        .map(|d| d.drops)
                        .unwrap_or_default(),
                }]),
            };
            match kept {
                Ok(gone) => {
                    for e in gone {
                        self.lost(&e, &instance);
                    }
                }
                Err(e) => {
                    log_limited(
                        Kind::Spool,
                        &format!(
                            "spool for {}: cannot keep a batch of {} records: {e}",
                            self.destination.upstream, b.record_count
                        ),
                    );
                    let carried = BatchReader::default()
                        .decode(&b.bytes)
                        .map(|d| d.drops)
                        .unwrap_or_default();
                    self.lock()
                        .outbox
                        .spill_lost(Some(b.sequence), b.record_count, &carried);
                }
            }
        }
    }

    /// Counts a batch the spool gave up on; the collector learns its
    /// sequence when this process's producer sealed it.
    fn lost(&self, e: &Evicted, instance: &[u8; 16]) {
        let ours = e.instance == spool::hex(instance);
        self.lock()
            .outbox
            .spill_lost(ours.then_some(e.sequence), e.records, &e.carried);
    }

    /// Sends the spool's oldest batch; false when there is none.
    fn send_spooled(&self, client: &Client) -> bool {
        let next = self
            .spool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .and_then(Spool::oldest);
        match next {
            None => false,
            Some(Err(unreadable)) => {
                let instance = self.lock().instance_id;
                self.lost(&unreadable, &instance);
                true
            }
            Some(Ok((bytes, records))) => {
                let reply = self.post(client, &bytes);
                let done = self.lock().outbox.spool_answered(reply, records, now_ms());
                if done {
                    let mut spool = self.spool.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(sp) = spool.as_mut() {
                        sp.remove_oldest();
                    }
                }
                true
            }
        }
    }

    /// Sends until told to stop, then flushes what it holds until
    /// `deadline`, and spools what is left when it has a spool.
    fn run(&self, client: &Client, deadline: &Mutex<Option<Instant>>) {
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let mut spilled = Vec::new();
            let (job, spool_turn, done) = {
                let mut s = self.lock();
                let now = now_ms();
                if stopping {
                    // Cut the open batch now rather than at its timer.
                    let mut l = s.outbox.limits().clone();
                    l.flush_interval_ms = 0;
                    s.outbox.set_limits(l);
                }
                s.outbox.tick(now);
                let idle = s.outbox.pending_batches() == 0 && s.outbox.open_records() == 0;
                let late = deadline
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some_and(|d| Instant::now() >= d);
                if stopping && late {
                    s.outbox.spill_all(now);
                }
                while let Some(b) = s.outbox.take_spilled() {
                    spilled.push(b);
                }
                if stopping && (idle || late) {
                    (None, false, true)
                } else {
                    let next = s
                        .outbox
                        .next_send(now)
                        .map(|(seq, bytes)| (seq, bytes.to_vec()));
                    let spool_turn = next.is_none() && s.outbox.may_send_spooled(now);
                    let job = next.map(|(seq, body)| {
                        s.token = s.token.wrapping_add(1);
                        let token = s.token;
                        s.outbox.sent(seq, token, now);
                        (token, body)
                    });
                    (job, spool_turn, false)
                }
            };
            self.keep(spilled);
            if done {
                return;
            }
            match job {
                Some((token, body)) => {
                    let reply = self.post(client, &body);
                    self.lock().outbox.answered(token, reply, now_ms());
                }
                None if spool_turn && self.send_spooled(client) => {}
                None => {
                    let guard = self.lock();
                    if !guard.outbox.has_spilled() {
                        let _unused = self
                            .wake
                            .wait_timeout(guard, POLL)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                }
            }
        }
    }
}

impl Lane {
    /// One call, counted.
    fn post(&self, client: &Client, body: &[u8]) -> Reply {
        self.bytes_sent.fetch_add(
            u64::try_from(body.len()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        post(client, &self.destination, body)
    }
}

/// One call: POST the batch, read what the collector said.
fn post(client: &Client, d: &Destination, body: &[u8]) -> Reply {
    let mut req = client.agent.post(&client.url);
    for (name, value) in d.batch_headers(body, now_ms()) {
        // The URL carries method, path, scheme and authority.
        if !name.starts_with(':') {
            req = req.header(name, value.as_str());
        }
    }
    let mut resp = match req.send(body) {
        Ok(r) => r,
        Err(e) => {
            // Refused, timed out, or a certificate that does not match:
            // retried by the outbox, and said once in a while.
            log_limited(
                Kind::CallFailed,
                &format!("collector {} ({}): {e}", d.upstream, client.url),
            );
            return Reply::Failed;
        }
    };
    let status = resp.status().as_u16().to_string();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Only a 409's or a 400's body matters (unknown_dictionary,
    // unsupported_revision); read a bounded prefix of it, and drain
    // nothing else.
    let body = if status == "409" || status == "400" {
        resp.body_mut()
            .with_config()
            .limit(u64::try_from(wire::MAX_ERROR_BODY_BYTES).unwrap_or(4096))
            .read_to_vec()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let reply = Reply::read(Some(&status), retry_after.as_deref(), body.len(), || {
        Some(body.clone())
    });
    if let Reply::Status {
        code: ReplyCode::UnsupportedRevision,
        ..
    } = reply
    {
        log_limited(
            Kind::Refused,
            &format!(
                "collector {} predates this plugin's schema revision: client addresses now \
                 travel as dictionary strings; upgrade the collector",
                d.upstream
            ),
        );
    }
    reply
}

/// How a lane's thread reaches its collector.
struct Client {
    agent: ureq::Agent,
    url: String,
}

/// A lane and its sender thread (taken when it is stopped).
type Running = (Arc<Lane>, Option<JoinHandle<()>>);

/// Every lane of the process.
pub struct Lanes {
    lanes: Mutex<Vec<Running>>,
    producer: Mutex<Producer>,
    seed: Mutex<u64>,
    deadline: Arc<Mutex<Option<Instant>>>,
    spool: Option<SpoolConfig>,
    roots: Roots,
}

impl Default for Lanes {
    fn default() -> Self {
        Lanes::new()
    }
}

impl Lanes {
    /// No lanes yet.
    pub fn new() -> Self {
        let random = RandomState::new();
        Lanes {
            lanes: Mutex::new(Vec::new()),
            producer: Mutex::new(Producer {
                instance_id: [0; 16],
                node_id: String::new(),
                filter_version: concat!("plugin-", env!("CARGO_PKG_VERSION")).into(),
                kong_version: String::new(),
            }),
            seed: Mutex::new(random.hash_one(0x6b6f6e67_u64) | 1),
            deadline: Arc::new(Mutex::new(None)),
            spool: None,
            roots: Roots::Bundled,
        }
    }

    /// Lanes that check `https` collectors against `roots`.
    pub fn trusting(self, roots: Roots) -> Self {
        Lanes { roots, ..self }
    }

    /// Lanes that spool what they would drop.
    pub fn with_spool(spool: SpoolConfig) -> Self {
        Lanes {
            spool: Some(spool),
            ..Lanes::new()
        }
    }

    /// A fresh random number.
    pub fn next_seed(&self) -> u64 {
        let mut s = self.seed.lock().unwrap_or_else(PoisonError::into_inner);
        *s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *s ^ (*s >> 29)
    }

    /// The lane for a config, started on first use; configs with the same
    /// destination share it (and the newest config's limits).
    pub fn lane_for(&self, config: &Config) -> Result<Arc<Lane>, String> {
        let destination = Destination::of(config);
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let spill = self.spool.is_some();
        if let Some((lane, _)) = lanes.iter().find(|(l, _)| l.destination == destination) {
            lane.lock().outbox.set_limits(limits(config, spill));
            return Ok(Arc::clone(lane));
        }
        let (agent, url) = transport::agent(
            &destination,
            Duration::from_millis(u64::from(config.timeout_ms)),
            &self.roots,
        )?;
        let spool = match &self.spool {
            Some(c) => {
                let dir = c.dir.join(spool::folder_for(&destination.upstream));
                let s = Spool::open(&dir, c.max_bytes)
                    .map_err(|e| format!("spool {}: {e}", dir.display()))?;
                if !s.is_empty() {
                    log(&format!(
                        "spool {}: {} batches ({} bytes) from before, sent once the collector takes them",
                        dir.display(),
                        s.len(),
                        s.bytes()
                    ));
                }
                Some(s)
            }
            None => None,
        };
        let mut instance_id = [0u8; 16];
        instance_id[..8].copy_from_slice(&self.next_seed().to_le_bytes());
        instance_id[8..].copy_from_slice(&self.next_seed().to_le_bytes());
        // Version 4 UUID bits, so the id reads as one in the warehouse.
        instance_id[6] = (instance_id[6] & 0x0f) | 0x40;
        instance_id[8] = (instance_id[8] & 0x3f) | 0x80;
        let producer = Producer {
            instance_id,
            ..self
                .producer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        let lane = Arc::new(Lane {
            destination,
            state: Mutex::new(State {
                outbox: Outbox::new(&producer, limits(config, spill), self.next_seed()),
                token: 0,
                instance_id,
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            spool: Mutex::new(spool),
            bytes_sent: AtomicU64::new(0),
        });
        let runner = Arc::clone(&lane);
        let deadline = Arc::clone(&self.deadline);
        let handle = std::thread::Builder::new()
            .name("kong-looker-lane".into())
            .spawn(move || runner.run(&Client { agent, url }, &deadline))
            .map_err(|e| format!("cannot start a delivery thread: {e}"))?;
        lanes.push((Arc::clone(&lane), Some(handle)));
        Ok(lane)
    }

    /// Sets the node id every lane's producer names (from
    /// `kong.node.get_id`).
    pub fn set_node_id(&self, node_id: &str) {
        let shared = {
            let mut p = self.producer.lock().unwrap_or_else(PoisonError::into_inner);
            p.node_id = node_id.to_owned();
            p.clone()
        };
        for (lane, _) in self
            .lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let mut s = lane.lock();
            let producer = Producer {
                instance_id: s.instance_id,
                ..shared.clone()
            };
            s.outbox.set_producer(&producer);
        }
    }

    /// Counters summed over lanes, and the bytes held.
    pub fn stats(&self) -> (Stats, usize) {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = Stats::default();
        let mut bytes = 0usize;
        for (lane, _) in lanes.iter() {
            let (s, b) = lane.stats();
            total.add(&s);
            bytes = bytes.saturating_add(b);
        }
        (total, bytes)
    }

    /// Batch bytes sent by every lane, retries included.
    pub fn bytes_sent(&self) -> u64 {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes.iter().fold(0, |n, (lane, _)| {
            n.saturating_add(lane.bytes_sent.load(Ordering::Relaxed))
        })
    }

    /// The spools' (bytes, batches), summed over lanes.
    pub fn spooled(&self) -> (u64, usize) {
        let lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        lanes.iter().fold((0, 0), |(b, n), (lane, _)| {
            let (lb, ln) = lane.spooled();
            (b.saturating_add(lb), n.saturating_add(ln))
        })
    }

    /// Flushes every lane until it is empty or `grace` has passed, then
    /// stops its thread. What is still held after that is lost, and
    /// reported by the caller.
    pub fn shutdown(&self, grace: Duration) {
        *self.deadline.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Instant::now() + grace);
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        for (lane, _) in lanes.iter() {
            lane.stop.store(true, Ordering::Release);
            lane.wake.notify_all();
        }
        for (_, handle) in lanes.iter_mut() {
            if let Some(h) = handle.take() {
                // A lane thread cannot panic on input; if it did, the
                // others still flush.
                let _unused = h.join();
            }
        }
    }
}
