//! What every context of one Wasm instance shares: one outbox per collector
//! destination, the election of the root context that flushes, the
//! producer identity and the metric handles. Kong runs one instance per
//! worker for all chains, so this is the worker's state until a trap or a
//! chain rebuild replaces the instance.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;

use kong_looker_proto::builder::Producer;

use super::metrics::Metrics;
use kong_looker_core::config::Config;
use kong_looker_core::destination::Destination;
use kong_looker_core::log_limit::LogLimit;
use kong_looker_core::outbox::{Limits, Outbox};

/// One destination's outbox.
pub struct Lane {
    /// Where it goes.
    pub destination: Destination,
    /// What waits to go.
    pub outbox: Outbox,
    /// This lane's producer. Each lane numbers its batches and defines its
    /// dictionary on its own, so each needs an instance id of its own:
    /// two lanes under one id would collide at a collector they share.
    pub instance_id: [u8; 16],
}

/// The instance-wide state.
pub struct Worker {
    /// What every lane's producer shares: node, filter and Kong versions.
    pub producer: Producer,
    /// Whether `kong.node.id` and `kong.version` have been read.
    pub producer_known: bool,
    /// One outbox per destination.
    pub lanes: Vec<Lane>,
    /// Call tokens, to the lane that made the call.
    pub calls: HashMap<u32, usize>,
    /// The root context that flushes, and when it last ticked.
    pub flusher: Option<(u32, i64)>,
    /// Metric handles, once defined.
    pub metrics: Option<Metrics>,
    /// Any chain turned metrics off (older Kong traps on them).
    pub metrics_off: bool,
    /// Error-log lines held back while they repeat.
    pub log_limit: LogLimit,
    /// The lane whose turn it is to send.
    pub next_lane: usize,
    seed: u64,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Runs `f` on the worker state, creating it on first use. `None` if the
/// state is already borrowed (a host callback re-entered), which the
/// caller treats as a capture error rather than a trap.
pub fn with<R>(f: impl FnOnce(&mut Worker) -> R) -> Option<R> {
    WORKER.with(|cell| {
        let mut guard = cell.try_borrow_mut().ok()?;
        let worker = guard.get_or_insert_with(Worker::new);
        Some(f(worker))
    })
}

/// Counts a record lost to a capture error on `lane`.
pub fn count_capture_error(lane: usize) {
    with(|w| {
        if let Some(lane) = w.lanes.get_mut(lane) {
            lane.outbox.count_capture_error();
        }
    });
}

impl Worker {
    fn new() -> Self {
        // std's RandomState draws from WASI random_get, which Kong provides.
        let random = std::collections::hash_map::RandomState::new();
        let a = random.hash_one(0x6b6f6e67_u64);
        let b = random.hash_one(0x6c6f6f6b_u64);
        Worker {
            producer: Producer {
                instance_id: [0; 16],
                node_id: String::new(),
                filter_version: env!("CARGO_PKG_VERSION").into(),
                kong_version: String::new(),
            },
            producer_known: false,
            lanes: Vec::new(),
            calls: HashMap::new(),
            flusher: None,
            metrics: None,
            metrics_off: false,
            log_limit: LogLimit::default(),
            next_lane: 0,
            seed: a ^ b.rotate_left(17),
        }
    }

    /// A random version 4 UUID, from the instance seed (itself drawn from
    /// WASI `random_get`).
    fn new_instance_id(&mut self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&self.next_seed().to_le_bytes());
        id[8..].copy_from_slice(&self.next_seed().to_le_bytes());
        // Version 4 UUID bits, so the id reads as one in the warehouse.
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        id
    }

    /// The producer a lane's batches name.
    pub fn producer_of(&self, instance_id: [u8; 16]) -> Producer {
        Producer {
            instance_id,
            ..self.producer.clone()
        }
    }

    /// A fresh random number from the instance seed.
    pub fn next_seed(&mut self) -> u64 {
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.seed
    }

    /// The lane for a chain's config, created on first use; chains with the
    /// same destination share it.
    pub fn lane_for(&mut self, config: &Config) -> usize {
        let destination = Destination::of(config);
        let limits = limits(config);
        if let Some(i) = self.lanes.iter().position(|l| l.destination == destination) {
            if let Some(lane) = self.lanes.get_mut(i) {
                lane.outbox.set_limits(limits);
            }
            return i;
        }
        let seed = self.next_seed();
        let instance_id = self.new_instance_id();
        let mut outbox = Outbox::new(&self.producer_of(instance_id), limits, seed);
        // Hashing a whole batch in one tick would hold up the requests
        // queued on this worker; the outbox signs a slice per request.
        outbox.sign_ahead(config.signing_key.as_bytes());
        self.lanes.push(Lane {
            outbox,
            destination,
            instance_id,
        });
        self.lanes.len().saturating_sub(1)
    }

    /// Elects `root` as the flusher if there is none or the current one has
    /// stopped ticking (a stale root of a rebuilt chain); true if `root`
    /// flushes.
    pub fn elect(&mut self, root: u32, now_ms: i64, tick_ms: i64) -> bool {
        match self.flusher {
            Some((id, _)) if id == root => {
                self.flusher = Some((root, now_ms));
                true
            }
            Some((_, last)) if now_ms.saturating_sub(last) <= tick_ms.saturating_mul(3) => false,
            _ => {
                self.flusher = Some((root, now_ms));
                true
            }
        }
    }
}

/// The outbox limits of a config, as the filter runs them.
pub fn limits(config: &Config) -> Limits {
    Limits {
        // ngx_wasm_module frees a root context's call only when no other
        // call of that root is pending, so a second call in flight leaks a
        // connection slot (and, once they run out, fails client requests).
        // The filter keeps one call out at a time, whatever the config says.
        max_in_flight: 1,
        ..Limits::of(config)
    }
}
