//! Capture without allocation (issue 17): once a route, caller, path
//! template, agent and client address have been met, capturing a request
//! allocates nothing, and appending it to the outbox allocates only when a
//! batch is sealed. A counting allocator watches the reference mix as
//! Kong 3.9 presents it, natively, through the capture core alone.
#![cfg(not(target_arch = "wasm32"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use kong_looker_proto::mix::MixParams;
use kong_looker_testsupport::native::{self, capture_all, capturers, requests};

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

#[test]
fn capturing_a_request_met_before_allocates_nothing() {
    let requests = requests(MixParams::default(), 2_000);
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
    let requests = requests(MixParams::default(), 2_000);
    let mut capturers = capturers();
    let mut map = Vec::new();
    let now = 1_767_614_400_000;
    let mut outbox = native::outbox();
    // Warm: the dictionary meets every value, the builder its sizes, and
    // a collector that answers at once acknowledges every definition.
    for _ in 0..2 {
        capture_all(&mut capturers, &requests, &mut map, now, |r| {
            outbox.push(r, now)
        });
        native::deliver_all(&mut outbox, now + 1_000);
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
