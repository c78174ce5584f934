//! Which error-log lines the filter writes: at most one per kind per
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
}

const KINDS: usize = 4;

/// Per-kind state: when the last line was written, and how many were held
/// back since.
#[derive(Clone, Debug, Default)]
pub struct LogLimit {
    last_ms: [Option<i64>; KINDS],
    held: [u64; KINDS],
}

impl LogLimit {
    /// Whether a line of `kind` may be written at `now_ms`: `Some(n)` with
    /// the number of lines held back since the last one, or `None` (and
    /// the line is counted as held).
    pub fn admit(&mut self, kind: Kind, now_ms: i64) -> Option<u64> {
        let i = kind as usize;
        let (Some(last), Some(held)) = (self.last_ms.get_mut(i), self.held.get_mut(i)) else {
            return None;
        };
        match *last {
            Some(t) if now_ms.saturating_sub(t) < INTERVAL_MS => {
                *held = held.saturating_add(1);
                None
            }
            _ => {
                *last = Some(now_ms);
                Some(std::mem::take(held))
            }
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
}
