//! State all workers of one Kong node share: the shared key-value store
//! with ngx_wasm_module's CAS rules, shared queues, and metrics.

use std::collections::{BTreeMap, VecDeque};

/// Metric kinds of the proxy-wasm ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Set to a value.
    Gauge,
    /// Recorded values.
    Histogram,
}

/// One metric as Kong's Prometheus plugin would export it
/// (`pw:<filter>:<name>`).
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The name the filter defined.
    pub name: String,
    /// The kind.
    pub kind: MetricKind,
    /// Counter or gauge value, summed over workers; for histograms the sum
    /// of recorded values.
    pub value: i64,
    /// Histogram: number of recorded values.
    pub count: u64,
}

/// What every worker of the node shares.
#[derive(Debug, Default)]
pub struct Shared {
    /// Key to (value, cas).
    pub(crate) data: BTreeMap<String, (Vec<u8>, u32)>,
    /// Zones that exist, besides `*` when `any_zone` is set.
    pub(crate) zones: Vec<String>,
    pub(crate) any_zone: bool,
    /// Queue name to (id, items).
    pub(crate) queues: BTreeMap<String, (u32, VecDeque<Vec<u8>>)>,
    pub(crate) queue_capacity: usize,
    /// Metric id is index + 1.
    pub(crate) metrics: Vec<Metric>,
}
