//! Delivery: one lane per collector destination, each the core's
//! [`Outbox`] (batching, retries, backoff, `Retry-After`, the memory cap,
//! counted drops) plus a thread that ships its sealed batches, signed,
//! over a native HTTP client (rustls for `https`). One call is in flight
//! per lane. Owns the lanes, their threads and the bounded flush at
//! shutdown; what a reply means is the outbox's business.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kong_looker_core::config::Config;
use kong_looker_core::destination::Destination;
use kong_looker_core::outbox::{Limits, Outbox, Reply, Stats};
use kong_looker_proto::Record;
use kong_looker_proto::builder::Producer;
use kong_looker_proto::wire;

/// How often an idle lane looks at its outbox (flush timers, backoffs).
const POLL: Duration = Duration::from_millis(20);

/// Wall clock, Unix ms: the outbox's clock and the batches' time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn url(d: &Destination) -> String {
    let scheme = if d.tls { "https" } else { "http" };
    format!("{scheme}://{}{}", d.upstream, wire::BATCHES_PATH)
}

/// The outbox limits of a config.
pub fn limits(config: &Config) -> Limits {
    Limits {
        // One thread per lane makes one call at a time.
        max_in_flight: 1,
        ..Limits::of(config)
    }
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
        self.lock().outbox.push(record, now_ms());
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

    /// Sends until told to stop, then flushes what it holds until
    /// `deadline`.
    fn run(&self, agent: &ureq::Agent, deadline: &Mutex<Option<Instant>>) {
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let job = {
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
                if stopping && (idle || late) {
                    return;
                }
                let next = s
                    .outbox
                    .next_send(now)
                    .map(|(seq, bytes)| (seq, bytes.to_vec()));
                next.map(|(seq, body)| {
                    s.token = s.token.wrapping_add(1);
                    let token = s.token;
                    s.outbox.sent(seq, token, now);
                    (token, body)
                })
            };
            match job {
                Some((token, body)) => {
                    let reply = post(agent, &self.destination, &body);
                    self.lock().outbox.answered(token, reply, now_ms());
                }
                None => {
                    let guard = self.lock();
                    let _unused = self
                        .wake
                        .wait_timeout(guard, POLL)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}

/// One call: POST the batch, read what the collector said.
fn post(agent: &ureq::Agent, d: &Destination, body: &[u8]) -> Reply {
    let mut req = agent.post(url(d));
    for (name, value) in d.batch_headers(body, now_ms()) {
        req = match name {
            // The URL carries method, path and scheme.
            ":method" | ":path" | ":scheme" => req,
            ":authority" if d.authority == d.upstream => req,
            ":authority" => req.header("host", value.as_str()),
            _ => req.header(name, value.as_str()),
        };
    }
    let mut resp = match req.send(body) {
        Ok(r) => r,
        Err(_) => return Reply::Failed,
    };
    let status = resp.status().as_u16().to_string();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Only a 409's body matters (unknown_dictionary); read a bounded
    // prefix of it, and drain nothing else.
    let body = if status == "409" {
        resp.body_mut()
            .with_config()
            .limit(u64::try_from(wire::MAX_ERROR_BODY_BYTES).unwrap_or(4096))
            .read_to_vec()
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Reply::read(Some(&status), retry_after.as_deref(), body.len(), || {
        Some(body.clone())
    })
}

/// A lane and its sender thread (taken when it is stopped).
type Running = (Arc<Lane>, Option<JoinHandle<()>>);

/// Every lane of the process.
pub struct Lanes {
    lanes: Mutex<Vec<Running>>,
    producer: Mutex<Producer>,
    seed: Mutex<u64>,
    deadline: Arc<Mutex<Option<Instant>>>,
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
        if let Some(rest) = destination.upstream.strip_prefix("unix:") {
            return Err(format!(
                "collector: unix:{rest} is not supported by the plugin server yet; use host:port"
            ));
        }
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((lane, _)) = lanes.iter().find(|(l, _)| l.destination == destination) {
            lane.lock().outbox.set_limits(limits(config));
            return Ok(Arc::clone(lane));
        }
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
                outbox: Outbox::new(&producer, limits(config), self.next_seed()),
                token: 0,
                instance_id,
            }),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(u64::from(config.timeout_ms))))
            .build()
            .into();
        let runner = Arc::clone(&lane);
        let deadline = Arc::clone(&self.deadline);
        let handle = std::thread::Builder::new()
            .name("kong-looker-lane".into())
            .spawn(move || runner.run(&agent, &deadline))
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
