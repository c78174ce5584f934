//! The plugin server's numbers in Prometheus' text format, for
//! `-metrics-listen`: the filter's counters under the same names
//! (`kong_looker_<name>_total`), summed over every collector lane, and the
//! bytes held. Rendering is pure; `main.rs` serves it.

use std::fmt::Write as _;

use kong_looker_core::outbox::{COUNTERS, Stats};

/// What the process knows beyond the outboxes' counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// Bytes of records held for the collector.
    pub held_bytes: usize,
    /// Plugin configurations Kong has started.
    pub instances: usize,
    /// Bytes kept in the spools.
    pub spool_bytes: u64,
    /// Batches kept in the spools.
    pub spool_batches: usize,
    /// Batch bytes sent to collectors, retries included.
    pub batch_bytes_sent: u64,
}

/// The text of `GET /metrics`.
pub fn render(stats: &Stats, p: &Process) -> String {
    let mut out = String::with_capacity(2048);
    let mut sample = |name: &str, kind: &str, help: &str, value: u64| {
        if !help.is_empty() {
            let _ = writeln!(out, "# HELP kong_looker_{name} {help}");
        }
        let _ = writeln!(out, "# TYPE kong_looker_{name} {kind}");
        let _ = writeln!(out, "kong_looker_{name} {value}");
    };
    for (name, value) in COUNTERS.iter().zip(stats.counters()) {
        sample(&format!("{name}_total"), "counter", "", value);
    }
    let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    sample(
        "records_spooled_total",
        "counter",
        "Records handed to the on-disk spool.",
        stats.records_spilled,
    );
    sample(
        "batch_bytes_sent_total",
        "counter",
        "Batch bytes sent to collectors, retries included.",
        p.batch_bytes_sent,
    );
    sample(
        "buffer_bytes",
        "gauge",
        "Bytes of records held for the collector.",
        wide(p.held_bytes),
    );
    sample(
        "instances",
        "gauge",
        "Plugin configurations Kong has started.",
        wide(p.instances),
    );
    sample(
        "spool_bytes",
        "gauge",
        "Bytes kept in the spools.",
        p.spool_bytes,
    );
    sample(
        "spool_batches",
        "gauge",
        "Batches kept in the spools.",
        wide(p.spool_batches),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_rendered_under_the_filters_name() {
        let stats = Stats {
            records_buffered: 7,
            batches_unauthorized: 2,
            ..Stats::default()
        };
        let text = render(
            &stats,
            &Process {
                held_bytes: 512,
                instances: 3,
                spool_bytes: 4096,
                spool_batches: 2,
                batch_bytes_sent: 9,
            },
        );
        assert!(
            text.contains("kong_looker_records_captured_total 7\n"),
            "{text}"
        );
        assert!(text.contains("kong_looker_batches_unauthorized_total 2\n"));
        assert!(text.contains("kong_looker_buffer_bytes 512\n"));
        assert!(text.contains("kong_looker_instances 3\n"));
        assert!(text.contains("kong_looker_spool_bytes 4096\n"));
        assert!(text.contains("kong_looker_spool_batches 2\n"));
        assert!(text.contains("kong_looker_batch_bytes_sent_total 9\n"));
        for name in COUNTERS {
            assert!(text.contains(&format!("# TYPE kong_looker_{name}_total counter\n")));
        }
    }
}
