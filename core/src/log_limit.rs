//! Which error-log lines a host writes: at most one per kind per
//! interval, each saying how many like it were held back since the last.
//! While the collector is away every call fails the same way, and a line
//! per call would bury the gateway's own errors; the counts stay whole in
//! the metrics either way.

/// Shortest time between two lines of one kind, ms.
pub const INTERVAL_MS: i64 = 30_000;

/// What a line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The host refused to make a call (bad address, no resolver).
    DispatchRefused,
    /// A call got no answer (refused, reset, timed out).
    CallFailed,
    /// The collector refused the signature (401).
    Unauthorized,
    /// The collector answered with another non-2xx status.
    Refused,
    /// The plugin server got a frame or call it cannot serve.
    BadInput,
    /// A request could not be captured.
    CaptureError,
    /// The plugin server's spool could not keep a batch.
    Spool,
}

const KINDS: usize = 7;

/// Per-kind state: when the current interval began, how many lines it has
/// admitted, and how many were held back since the last admitted one.
#[derive(Clone, Debug)]
pub struct LogLimit {
    burst: u32,
    since_ms: [Option<i64>; KINDS],
    admitted: [u32; KINDS],
    held: [u64; KINDS],
}

impl Default for LogLimit {
    /// One line per kind per interval: what the filter writes into Kong's
    /// error log.
    fn default() -> Self {
        LogLimit::with_burst(1)
    }
}

impl LogLimit {
    /// Up to `burst` lines per kind per interval (at least one), so that a
    /// few different faults in a row are each named.
    pub fn with_burst(burst: u32) -> Self {
        LogLimit {
            burst: burst.max(1),
            since_ms: [None; KINDS],
            admitted: [0; KINDS],
            held: [0; KINDS],
        }
    }

    /// Whether a line of `kind` may be written at `now_ms`: `Some(n)` with
    /// the number of lines held back since the last one, or `None` (and
    /// the line is counted as held).
    pub fn admit(&mut self, kind: Kind, now_ms: i64) -> Option<u64> {
        let i = kind as usize;
        let (Some(since), Some(admitted), Some(held)) = (
            self.since_ms.get_mut(i),
            self.admitted.get_mut(i),
            self.held.get_mut(i),
        ) else {
            return None;
        };
        let fresh = since.is_none_or(|t| now_ms.saturating_sub(t) >= INTERVAL_MS);
        if fresh {
            *since = Some(now_ms);
            *admitted = 0;
        }
        if *admitted < self.burst {
            *admitted = admitted.saturating_add(1);
            Some(std::mem::take(held))
        } else {
            *held = held.saturating_add(1);
            None
        }
    }
}

/// " (N more like it since the last)" or nothing.
pub fn held_note(held: u64) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(" ({held} more like it in the last {}s)", INTERVAL_MS / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn one_line_per_kind_per_interval_with_the_held_count() {
        let mut l = LogLimit::default();
        assert_eq!(l.admit(Kind::CallFailed, 1_000), Some(0));
        for t in 1..100 {
            assert_eq!(l.admit(Kind::CallFailed, 1_000 + t * 100), None);
        }
        assert_eq!(
            l.admit(Kind::Unauthorized, 2_000),
            Some(0),
            "kinds are limited apart"
        );
        assert_eq!(l.admit(Kind::CallFailed, 1_000 + INTERVAL_MS), Some(99));
        assert_eq!(l.admit(Kind::CallFailed, 1_000 + INTERVAL_MS + 1), None);
        assert_eq!(held_note(0), "");
        assert!(held_note(7).contains("7 more"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_burst_admits_that_many_lines_per_interval() {
        let mut l = LogLimit::with_burst(3);
        for t in 0..3 {
            assert_eq!(l.admit(Kind::BadInput, 1_000 + t), Some(0));
        }
        for t in 3..50 {
            assert_eq!(l.admit(Kind::BadInput, 1_000 + t), None);
        }
        assert_eq!(l.admit(Kind::BadInput, 1_000 + INTERVAL_MS), Some(47));
        assert_eq!(l.admit(Kind::BadInput, 1_001 + INTERVAL_MS), Some(0));
    }
}
