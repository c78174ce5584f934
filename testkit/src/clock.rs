//! The clock the test controls. Every worker of a [`crate::Kong`] reads the
//! same clock, and only the test moves it, so ticks, timeouts and latencies
//! are deterministic and a test never sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Wall-clock time in nanoseconds since the Unix epoch, shared by handle.
#[derive(Clone, Debug)]
pub struct Clock {
    now_ns: Arc<AtomicU64>,
}

impl Clock {
    /// A clock reading `start_ms` (Unix milliseconds).
    pub fn at_ms(start_ms: u64) -> Self {
        Clock {
            now_ns: Arc::new(AtomicU64::new(start_ms.saturating_mul(1_000_000))),
        }
    }

    /// Now, in nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::SeqCst)
    }

    /// Now, in whole milliseconds: the resolution Kong's host gives filters.
    pub fn now_ms(&self) -> u64 {
        self.now_ns() / 1_000_000
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now_ns.fetch_add(ns, Ordering::SeqCst);
    }

    /// Sets the clock to `ns`, never backwards.
    pub(crate) fn set_ns(&self, ns: u64) {
        self.now_ns.fetch_max(ns, Ordering::SeqCst);
    }
}
