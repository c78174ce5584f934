//! The requests read in the log phase whose records wait to be assembled.
//! Each log phase makes its host reads at once ([`Capturer::read_into`])
//! into a slot here; every [`RECORDS`] requests, and on each tick, the
//! records are assembled and appended in a row. Assembling is the longest
//! stretch of the filter's code that runs once per request: run between
//! two requests of nginx's, it starts with the caches cold each time, and
//! in a row it finds them warm.
//!
//! The slots stay where they are and are refilled in place: a request's
//! reads are some 450 bytes, and each move of them was a `memory.copy`.
//!
//! [`Capturer::read_into`]: kong_looker_core::capture::capturer::Capturer::read_into

use std::cell::RefCell;
use std::rc::Rc;

use kong_looker_core::capture::capturer::{Reads, RecordSink};
use kong_looker_core::outbox::Outbox;
use kong_looker_proto::Record;

use super::root::Chain;
use super::worker;

/// Requests read before their records are assembled. At most this many
/// header maps wait (nginx caps a request's headers at 32 KiB by default),
/// and a record waits at most this many requests or one tick.
pub const RECORDS: usize = 32;

/// The slots, and how many of them hold a request's reads.
struct Stage {
    slots: Vec<(Option<Rc<Chain>>, Reads<'static>)>,
    len: usize,
}

thread_local! {
    static STAGE: RefCell<Stage> = RefCell::new(Stage {
        slots: Vec::with_capacity(RECORDS),
        len: 0,
    });
}

/// Has `read` fill the next slot with a request's reads on `chain` (it
/// returns false for a request that sampling leaves out). Whether
/// [`RECORDS`] now wait, for the caller to [`assemble`] them once it has
/// let go of the capturer; `None` when the stage is held by a re-entered
/// host callback, and nothing was read.
pub fn read(chain: &Rc<Chain>, read: impl FnOnce(&mut Reads<'static>) -> bool) -> Option<bool> {
    STAGE.with(|stage| {
        let Ok(mut stage) = stage.try_borrow_mut() else {
            return None;
        };
        let stage = &mut *stage;
        if stage.len >= stage.slots.len() {
            stage.slots.push((None, Reads::empty()));
        }
        let slot = stage.slots.get_mut(stage.len)?;
        if read(&mut slot.1) {
            slot.0 = Some(chain.clone());
            stage.len = stage.len.saturating_add(1);
        }
        Some(stage.len >= RECORDS)
    })
}

/// Assembles every waiting record into its lane's outbox, oldest first,
/// and empties the slots.
pub fn assemble() {
    STAGE.with(|stage| {
        // Assembling makes no host call, so nothing re-enters the stage;
        // held (a re-entered callback), the records wait for the next call.
        let Ok(mut stage) = stage.try_borrow_mut() else {
            return;
        };
        let stage = &mut *stage;
        let len = stage.len;
        // When a re-entered callback holds the worker state, nothing is
        // assembled and the records wait too.
        worker::with(|w| {
            for (chain, reads) in stage.slots.iter_mut().take(len) {
                if let Some(chain) = chain.take() {
                    match (w.lanes.get_mut(chain.lane), chain.capturer.try_borrow_mut()) {
                        (Some(lane), Ok(mut capturer)) => capturer.assemble_into(
                            reads,
                            &mut Lane {
                                outbox: &mut lane.outbox,
                                now_ms: reads.now_ms(),
                            },
                        ),
                        (Some(lane), Err(_)) => lane.outbox.count_capture_error(),
                        (None, _) => {}
                    }
                }
                reads.release();
            }
            stage.len = 0;
        });
    });
}

/// A lane's outbox, where a record goes at its request's log time. It
/// knows the callers its builder remembers, so that most records give
/// theirs by key alone.
struct Lane<'a> {
    outbox: &'a mut Outbox,
    now_ms: i64,
}

impl RecordSink for Lane<'_> {
    fn knows_identity(&mut self, key: u64) -> bool {
        self.outbox.knows_identity(key)
    }

    fn knows_endpoint(&mut self, key: u64) -> bool {
        self.outbox.knows_endpoint(key)
    }

    fn knows_client(&mut self, text: &[u8]) -> Option<u64> {
        self.outbox.knows_client(text)
    }

    fn push(&mut self, record: &Record<'_>) -> bool {
        self.outbox.try_push(record, self.now_ms)
    }
}
