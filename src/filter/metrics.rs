//! The filter's metrics through the proxy-wasm metrics API, which Kong 3.8+
//! exports in its Prometheus plugin as `pw:kong_looker:<name>`. Counters
//! are advanced by the change in the outboxes' totals since the last tick.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use kong_looker_core::outbox::Stats;

/// Counter names, in the order of [`totals`].
const COUNTERS: [&str; 11] = [
    "records_captured",
    "records_delivered",
    "records_dropped_buffer_full",
    "records_dropped_dispatch_failed",
    "records_dropped_capture_error",
    "batches_sent",
    "batches_delivered",
    "batches_failed",
    "batches_retried",
    "batches_abandoned",
    "batches_unauthorized",
];

/// Defined metric ids and the totals last reported.
pub struct Metrics {
    counters: Vec<(u32, u64)>,
    buffer_bytes: u32,
    paths_overflowed: u32,
    paths_reported: u64,
}

impl Metrics {
    /// Defines the metrics; `None` if the host refuses (it then has no
    /// metrics support, and the filter goes on without).
    pub fn define() -> Option<Metrics> {
        let mut counters = Vec::with_capacity(COUNTERS.len());
        for name in COUNTERS {
            counters.push((hostcalls::define_metric(MetricType::Counter, name).ok()?, 0));
        }
        Some(Metrics {
            counters,
            buffer_bytes: hostcalls::define_metric(MetricType::Gauge, "buffer_bytes").ok()?,
            paths_overflowed: hostcalls::define_metric(MetricType::Counter, "paths_overflowed")
                .ok()?,
            paths_reported: 0,
        })
    }

    /// Reports the worker's totals.
    pub fn report(&mut self, stats: &Stats, buffer_bytes: usize, paths_overflowed: u64) {
        for ((id, last), total) in self.counters.iter_mut().zip(totals(stats)) {
            increment(*id, last, total);
        }
        increment(
            self.paths_overflowed,
            &mut self.paths_reported,
            paths_overflowed,
        );
        let _ = hostcalls::record_metric(
            self.buffer_bytes,
            u64::try_from(buffer_bytes).unwrap_or(u64::MAX),
        );
    }
}

fn increment(id: u32, last: &mut u64, total: u64) {
    let delta = total.saturating_sub(*last);
    if delta > 0
        && hostcalls::increment_metric(id, i64::try_from(delta).unwrap_or(i64::MAX)).is_ok()
    {
        *last = total;
    }
}

/// Sums the stats of every lane, in the order of [`COUNTERS`].
pub fn totals(stats: &Stats) -> [u64; 11] {
    [
        stats.records_buffered,
        stats.records_delivered,
        stats.dropped.buffer_full,
        stats.dropped.dispatch_failed,
        stats.dropped.capture_error,
        stats.batches_sent,
        stats.batches_delivered,
        stats.batches_failed,
        stats.batches_retried,
        stats.batches_abandoned,
        stats.batches_unauthorized,
    ]
}
