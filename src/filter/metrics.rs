//! The filter's metrics through the proxy-wasm metrics API, which Kong 3.8+
//! exports in its Prometheus plugin as `pw:kong_looker:<name>`. Counters
//! are advanced by the change in the outboxes' totals since the last tick.
//! Gauges: the bytes held for the collector, and the worker's Wasm memory
//! (linear memory only grows, so it is the high-water mark of everything
//! the filter holds: batches, dictionary, caches, the allocator's slack).

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use kong_looker_core::outbox::{COUNTERS, Stats};

/// Defined metric ids and the totals last reported.
pub struct Metrics {
    counters: Vec<(u32, u64)>,
    buffer_bytes: u32,
    memory_bytes: u32,
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
            memory_bytes: hostcalls::define_metric(MetricType::Gauge, "memory_bytes").ok()?,
            paths_overflowed: hostcalls::define_metric(MetricType::Counter, "paths_overflowed")
                .ok()?,
            paths_reported: 0,
        })
    }

    /// Reports the worker's totals.
    pub fn report(&mut self, stats: &Stats, buffer_bytes: usize, paths_overflowed: u64) {
        let _ = hostcalls::record_metric(self.memory_bytes, memory_bytes());
        for ((id, last), total) in self.counters.iter_mut().zip(stats.counters()) {
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

/// The size of this instance's linear memory; 0 where there is none.
fn memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    let pages = core::arch::wasm32::memory_size::<0>();
    #[cfg(not(target_arch = "wasm32"))]
    let pages = 0usize;
    u64::try_from(pages).map_or(u64::MAX, |p| p.saturating_mul(64 * 1024))
}

fn increment(id: u32, last: &mut u64, total: u64) {
    let delta = total.saturating_sub(*last);
    if delta > 0
        && hostcalls::increment_metric(id, i64::try_from(delta).unwrap_or(i64::MAX)).is_ok()
    {
        *last = total;
    }
}
