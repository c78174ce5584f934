//! Capture without allocation (issue 17): once a route, caller, path
//! template, agent and client address have been met, capturing a request
//! allocates nothing, and appending it to the outbox allocates only when a
//! batch is sealed. A counting allocator watches the reference mix as
//! Kong 3.9 presents it, natively, through the capture core alone.
#![cfg(not(target_arch = "wasm32"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;

use kong_looker_core::capture::capturer::{Capturer, LogSource, PROPERTIES};
use kong_looker_core::capture::headers;
use kong_looker_core::config::Config;
use kong_looker_core::outbox::{Limits, Outbox, Reply};
use kong_looker_proto::builder::Producer;
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::Profile;
use kong_looker_testsupport::traffic;

/// Counts this thread's allocations while `COUNTING` is set, so that the
/// test harness's other threads do not disturb the figure.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator runs during thread teardown too.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// A global allocator is unsafe to implement; this one only counts and
// passes every call to the system allocator unchanged. (Crates that count
// for tests count every thread; this test needs one thread's count.)
// SAFETY: every call is passed to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(Cell::get)
}

/// Kong's side of one request, borrowed by the capturer as a native host
/// lends it.
struct Kong {
    chain: usize,
    header_map: Vec<u8>,
    properties: [Option<Vec<u8>>; PROPERTIES.len()],
    status: String,
}

impl LogSource for Kong {
    fn property(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let i = PROPERTIES.iter().position(|p| *p == name)?;
        self.properties.get(i)?.as_deref().map(Cow::Borrowed)
    }
    fn response_header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        (name == ":status").then_some(Cow::Borrowed(self.status.as_bytes()))
    }
}

fn requests(n: usize) -> Vec<Kong> {
    let mut mix = Mix::new(MixParams::default());
    mix.take_requests(n)
        .iter()
        .map(|r| {
            let (req, _) = traffic::kong_request(&mix, r, Profile::Kong39);
            Kong {
                chain: req.chain,
                header_map: headers::serialize(
                    req.headers
                        .iter()
                        .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
                ),
                properties: PROPERTIES.map(|p| req.properties.get(p).cloned()),
                status: req.response.status.to_string(),
            }
        })
        .collect()
}

fn capturers() -> Vec<Capturer> {
    traffic::chains("127.0.0.1:9400", "")
        .iter()
        .enumerate()
        .map(|(i, c)| Capturer::new(Config::parse(c.as_bytes()).unwrap(), i as u64))
        .collect()
}

/// Captures every request, the host's header map copied into one reused
/// buffer (as the plugin server does), handing each record to `push`.
fn capture_all(
    capturers: &mut [Capturer],
    requests: &[Kong],
    map: &mut Vec<u8>,
    now: i64,
    mut push: impl FnMut(&kong_looker_proto::Record<'_>),
) -> usize {
    let mut captured = 0;
    for k in requests {
        let capturer = &mut capturers[k.chain];
        let mut buf = std::mem::take(map);
        buf.clear();
        buf.extend_from_slice(&k.header_map);
        let facts = capturer.request_facts(buf, now);
        if capturer.capture(&facts, k, now, &mut push) {
            captured += 1;
        }
        *map = facts.into_map();
    }
    captured
}

#[test]
fn capturing_a_request_met_before_allocates_nothing() {
    let requests = requests(2_000);
    let mut capturers = capturers();
    let mut map = Vec::new();
    let now = 1_767_614_400_000;
    // First pass: routes, callers, templates, agents and addresses are met.
    let first = allocations(|| {
        capture_all(&mut capturers, &requests, &mut map, now, |_| {});
    });
    let mut captured = 0;
    let second = allocations(|| {
        captured = capture_all(&mut capturers, &requests, &mut map, now, |_| {});
    });
    eprintln!("first pass: {first} allocations; second: {second}, for {captured} records");
    assert_eq!(captured, requests.len());
    assert!(first > 1_000, "the first pass is the one that allocates");
    assert_eq!(second, 0, "a request met before allocates nothing");
}

#[test]
fn appending_to_the_outbox_allocates_only_per_batch() {
    let requests = requests(2_000);
    let mut capturers = capturers();
    let mut map = Vec::new();
    let now = 1_767_614_400_000;
    let limits = Limits {
        max_records: 1000,
        max_bytes: 256 * 1024,
        flush_interval_ms: 1000,
        max_in_flight: 4,
        max_retry_age_ms: 300_000,
        max_buffer_bytes: 64 << 20,
        timeout_ms: 5000,
        spill: false,
    };
    let mut outbox = Outbox::new(&Producer::default(), limits, 7);
    // Warm: the dictionary meets every value, the builder its sizes, and
    // a collector that answers at once acknowledges every definition.
    for _ in 0..2 {
        capture_all(&mut capturers, &requests, &mut map, now, |r| {
            outbox.push(r, now)
        });
        outbox.tick(now + 1_000);
        while let Some((seq, _)) = outbox.next_send(now) {
            outbox.sent(seq, seq as u32, now);
            outbox.answered(
                seq as u32,
                Reply::Status {
                    status: 204,
                    retry_after_s: None,
                    unknown_dictionary: false,
                },
                now,
            );
        }
    }
    let n = allocations(|| {
        capture_all(&mut capturers, &requests, &mut map, now, |r| {
            outbox.push(r, now)
        });
    });
    // Batches close at 1,000 records: this pass seals two, and may open a
    // third.
    let batches = (requests.len() / 1000) as u64 + 1;
    eprintln!("{n} allocations for {} records", requests.len());
    assert!(
        n <= batches * 16,
        "{n} allocations for {batches} sealed batches: more than the sealing's own"
    );
}
