//! The collector's own numbers, served at `GET /metrics` in Prometheus
//! text format: what arrived, what was committed, refused or deduplicated,
//! what the producers report losing, and how the commit path is keeping up.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    /// e.g. `bad_signature`, `buffer_full`.
    pub reason: String,
}

/// Every metric, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Filter batches received (before any check).
    pub batches_received: Counter,
    /// Records in filter batches that decoded (before the commit).
    pub records_received: Counter,
    /// Filter batches stored.
    pub batches_committed: Counter,
    /// Records stored from filter batches.
    pub records_committed: Counter,
    /// Batches that were already stored (retries, replays).
    pub batches_duplicate: Counter,
    /// Requests refused, by reason.
    pub rejected: Family<Reason, Counter>,
    /// Http-log entries received.
    pub http_log_entries: Counter,
    /// Http-log rows stored.
    pub http_log_landed: Counter,
    /// Http-log rows already stored (Kong retries, or the filter's row).
    pub http_log_duplicate: Counter,
    /// Records the producers report losing, by reason.
    pub producer_drops: Family<Reason, Counter>,
    /// Sequence numbers missing below each producer's highest, over the
    /// producers seen since start.
    pub missing_batches: Gauge,
    /// Seconds per store transaction.
    pub commit_seconds: Histogram,
    /// Jobs waiting for the committer.
    pub queue_depth: Gauge,
    /// 1 while the last commit succeeded.
    pub store_up: Gauge,
    /// Looker datagroup triggers, by result.
    pub looker_triggers: Family<Reason, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kong_looker_collector");
        let m = Metrics {
            batches_received: Counter::default(),
            records_received: Counter::default(),
            batches_committed: Counter::default(),
            records_committed: Counter::default(),
            batches_duplicate: Counter::default(),
            rejected: Family::default(),
            http_log_entries: Counter::default(),
            http_log_landed: Counter::default(),
            http_log_duplicate: Counter::default(),
            producer_drops: Family::default(),
            missing_batches: Gauge::default(),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            queue_depth: Gauge::default(),
            store_up: Gauge::default(),
            looker_triggers: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "batches_received",
            "Filter batches received",
            m.batches_received.clone(),
        );
        registry.register(
            "records_received",
            "Records in filter batches that decoded, before the commit (retries count again)",
            m.records_received.clone(),
        );
        registry.register(
            "batches_committed",
            "Filter batches stored",
            m.batches_committed.clone(),
        );
        registry.register(
            "records_committed",
            "Records stored from filter batches",
            m.records_committed.clone(),
        );
        registry.register(
            "batches_duplicate",
            "Filter batches that were already stored",
            m.batches_duplicate.clone(),
        );
        registry.register(
            "rejected",
            "Requests refused, by reason",
            m.rejected.clone(),
        );
        registry.register(
            "http_log_entries",
            "Kong http-log entries received",
            m.http_log_entries.clone(),
        );
        registry.register(
            "http_log_landed",
            "Kong http-log rows stored",
            m.http_log_landed.clone(),
        );
        registry.register(
            "http_log_duplicate",
            "Kong http-log rows already stored, by Kong or by the filter",
            m.http_log_duplicate.clone(),
        );
        registry.register(
            "producer_drops",
            "Records the filters report dropping, by reason",
            m.producer_drops.clone(),
        );
        registry.register(
            "missing_batches",
            "Sequence numbers missing below each producer's highest (producers seen since start)",
            m.missing_batches.clone(),
        );
        registry.register(
            "commit_seconds",
            "Seconds per store transaction",
            m.commit_seconds.clone(),
        );
        registry.register(
            "queue_depth",
            "Jobs waiting for the committer",
            m.queue_depth.clone(),
        );
        registry.register(
            "store_up",
            "1 while the last commit succeeded",
            m.store_up.clone(),
        );
        registry.register(
            "looker_triggers",
            "Looker datagroup triggers, by result (ok, failed)",
            m.looker_triggers.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts a refusal.
    pub fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Adds producer-reported drops.
    pub fn drops(&self, reason: &str, n: u64) {
        if n > 0 {
            self.producer_drops
                .get_or_create(&Reason {
                    reason: reason.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// Counts a Looker datagroup trigger.
    pub fn looker_trigger(&self, result: &str) {
        self.looker_triggers
            .get_or_create(&Reason {
                reason: result.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// One sample's value from a Prometheus text exposition, e.g.
/// `sample(text, "kong_looker_collector_rejected_total{reason=\"stale_signature\"}")`;
/// `None` when it is absent. For tests, the demo and scripts.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
