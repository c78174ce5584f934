//! Instructions per request of native capture, for `valgrind
//! --tool=callgrind` (instruction counts repeat exactly, whatever else the
//! machine does): the same path as `bench/capture.rs` (request facts,
//! capture, the outbox's push and a collector that acknowledges at once).
//!
//! `capture_cost N` runs N rounds of the same 1,000 reference-mix requests
//! after one warm-up round; the difference between N = 10 and N = 0 is the
//! cost of 10,000 requests. See bench/RESULTS.md.
//!
//! `capture_cost N away` does the same with the default limits and the
//! collector away: 600 warm-up rounds, a second of request time each, fill
//! the buffer to its cap with cut batches, and the N rounds then push with
//! that backlog, the oldest batches dropped to make room. A third
//! argument, `high`, takes each round's 1,000 requests in turn from 50,000
//! at high cardinality (50,000 consumers, 200,000 addresses) instead.

use std::hint::black_box;

use kong_looker_proto::mix::{CARDINALITIES, MixParams};
use kong_looker_testsupport::native;

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let away = std::env::args().nth(2).as_deref() == Some("away");
    let high = std::env::args().nth(3).as_deref() == Some("high");
    let requests = if high {
        let (_, consumers, addresses) = CARDINALITIES[1];
        let params = MixParams {
            consumers,
            addresses,
            ..MixParams::default()
        };
        native::requests(params, 50_000)
    } else {
        native::bench_requests()
    };
    let mut capturers = native::capturers();
    let (mut outbox, warm_up) = match away {
        false => (native::outbox(), 1),
        true => (native::default_outbox(), 600),
    };
    let mut map = Vec::new();
    let mut now = 1_767_614_400_000i64;
    // The warm-up: caches filled, dictionary defined and acknowledged (or,
    // away, the buffer full).
    for round in 0..warm_up + rounds {
        let from = round.saturating_mul(1000) % requests.len();
        let round = requests.get(from..).unwrap_or_default();
        let round = round.get(..1000).unwrap_or(round);
        native::capture_all(&mut capturers, round, &mut map, now, |r| {
            outbox.push(r, now)
        });
        now += 1000;
        if away {
            outbox.tick(now);
        } else {
            black_box(native::deliver_all(&mut outbox, now));
        }
    }
    if away {
        eprintln!("{} batches pending", outbox.pending_batches());
    }
}
