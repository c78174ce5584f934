//! The requests read in the log phase whose records wait to be assembled.
//! Each log phase makes its host reads at once ([`Capturer::read`]) and
//! leaves the answers here; every [`RECORDS`] requests, and on each tick,
//! the records are assembled and appended in a row. Assembling is the
//! longest stretch of the filter's code that runs once per request: run
//! between two requests of nginx's, it starts with the caches cold each
//! time, and in a row it finds them warm.
//!
//! [`Capturer::read`]: kong_looker_core::capture::capturer::Capturer::read

use std::cell::RefCell;
use std::rc::Rc;

use kong_looker_core::capture::capturer::Reads;

use super::root::Chain;
use super::worker;

/// Requests read before their records are assembled. At most this many
/// header maps wait (nginx caps a request's headers at 32 KiB by default),
/// and a record waits at most this many requests or one tick.
pub const RECORDS: usize = 32;

thread_local! {
    static STAGE: RefCell<Vec<(Rc<Chain>, Reads<'static>)>> =
        RefCell::new(Vec::with_capacity(RECORDS));
}

/// Keeps one request's reads; assembles every waiting record once
/// [`RECORDS`] wait.
pub fn keep(chain: &Rc<Chain>, reads: Reads<'static>) {
    let full = STAGE.with(|stage| {
        let Ok(mut stage) = stage.try_borrow_mut() else {
            return None;
        };
        stage.push((chain.clone(), reads));
        Some(stage.len() >= RECORDS)
    });
    match full {
        Some(true) => assemble(),
        Some(false) => {}
        // Only a re-entered host callback holds the stage: the record is
        // lost, and counted.
        None => worker::count_capture_error(chain.lane),
    }
}

/// Assembles every waiting record into its lane's outbox, oldest first.
pub fn assemble() {
    // Taken out and put back, so its capacity serves the next requests.
    let Some(mut waiting) = STAGE.with(|stage| {
        stage
            .try_borrow_mut()
            .ok()
            .map(|mut s| std::mem::take(&mut *s))
    }) else {
        return;
    };
    // When a re-entered callback holds the worker state, nothing is
    // assembled and the records wait for the next call.
    worker::with(|w| {
        // By reference, then cleared: moving each out would copy it.
        for (chain, reads) in &waiting {
            let Some(lane) = w.lanes.get_mut(chain.lane) else {
                continue;
            };
            match chain.capturer.try_borrow_mut() {
                Ok(mut capturer) => capturer.assemble(reads, |record| {
                    lane.outbox.push(record, reads.now_ms());
                }),
                Err(_) => lane.outbox.count_capture_error(),
            }
        }
        waiting.clear();
    });
    put_back(waiting);
}

/// Returns the stage's buffer, with what it still holds, ahead of anything
/// kept since it was taken.
fn put_back(mut waiting: Vec<(Rc<Chain>, Reads<'static>)>) {
    STAGE.with(|stage| {
        if let Ok(mut stage) = stage.try_borrow_mut() {
            waiting.append(&mut stage);
            *stage = waiting;
        }
    });
}
