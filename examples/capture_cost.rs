//! Instructions per request of native capture, for `valgrind
//! --tool=callgrind` (instruction counts repeat exactly, whatever else the
//! machine does): the same path as `bench/capture.rs` (request facts,
//! capture, the outbox's push and a collector that acknowledges at once).
//!
//! `capture_cost N` runs N rounds of the same 1,000 reference-mix requests
//! after one warm-up round; the difference between N = 10 and N = 0 is the
//! cost of 10,000 requests. See bench/RESULTS.md.

use std::hint::black_box;

use kong_looker_testsupport::native;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let requests = native::bench_requests();
    let mut capturers = native::capturers();
    let mut outbox = native::outbox();
    let mut map = Vec::new();
    let mut now = 1_767_614_400_000i64;
    // The warm-up: caches filled, dictionary defined and acknowledged.
    for _ in 0..=rounds {
        native::capture_all(&mut capturers, &requests, &mut map, now, |r| {
            outbox.push(r, now)
        });
        now += 1000;
        black_box(native::deliver_all(&mut outbox, now));
    }
}
