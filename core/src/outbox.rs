//! The worker's outbox: the one buffer that every root context of a Wasm
//! instance appends to, and the batches on their way to the collector.
//! It decides when to cut a batch, which batch to send next, what a reply
//! means (done, retry after a delay, redefine the dictionary, give up), when
//! an unanswered call has timed out (Kong 3.8 never calls back on a failed
//! dispatch), and what to drop when memory runs out. Every record it gives
//! up on is counted by reason and reported in the next batch.
//!
//! No host calls: the filter asks [`Outbox::next_send`] for bytes, makes the
//! call, and reports back with [`Outbox::sent`], [`Outbox::send_refused`]
//! and [`Outbox::answered`]. Time is passed in, in filter-clock ms.
//!
//! A failed call closes the whole outbox, not just its batch, for a
//! backoff that grows with each failure in a row: while the collector is
//! away, one probe goes out per backoff period instead of one per pending
//! batch. That bounds the calls (each costs the gateway a connection slot
//! and an error-log line in ngx_wasm_module) whatever the backlog.
//!
//! A host that can keep batches on disk (the plugin server) sets
//! [`Limits::spill`]: what would be dropped for room or age is handed over
//! by [`Outbox::take_spilled`] instead, made self-contained, and the
//! spool's sends are judged by [`Outbox::spool_answered`] under the same
//! rules and the same backoff.
//!
//! A host that signs on the request path (the filter) calls
//! [`Outbox::sign_ahead`]: each push and each tick then hashes a slice of
//! the next batches' signatures (the `signature` module), and a batch is
//! sent once its signature is done ([`Outbox::authorization`]).

use std::collections::VecDeque;

use crate::config::Config;
use crate::signature::Signature;
use kong_looker_proto::builder::{
    AppendError, BatchBuilder, BuilderOptions, FRAMING_MAX, Producer, SealedBatch,
};
use kong_looker_proto::limits::MAX_ABANDONED;
use kong_looker_proto::v1::Drops;
use kong_looker_proto::wire;
use kong_looker_proto::{INLINE_REVISION, Record};

/// First retry delay.
const BACKOFF_BASE_MS: i64 = 500;
/// Longest retry delay.
const BACKOFF_CAP_MS: i64 = 30_000;
/// Longest `Retry-After` honoured.
const RETRY_AFTER_CAP_MS: i64 = 300_000;
/// Signature bytes hashed per record pushed: past what a record adds to
/// its batch (about 16 to 75 bytes with its share of definitions), so that
/// under load the signatures keep up without the ticks.
const SIGN_BYTES_PER_RECORD: usize = 128;
/// Signature bytes hashed per tick: what finishes a quiet worker's batches
/// (a few hundred records a second), at a cost of about 0.2 ms in Wasm.
const SIGN_BYTES_PER_TICK: usize = 16 * 1024;
/// Grace past the host's own give-up time before the outbox declares a
/// call failed.
const DEADLINE_GRACE_MS: i64 = 1_000;
/// ngx_wasm_module applies a call's timeout to its connect, send and read
/// steps apart, so a call can last three timeouts. Kong 3.8 never calls
/// back on a failure; a new call before the old one has surely ended would
/// be a second call in flight, which leaks a connection slot there.
const HOST_TIMEOUTS_PER_CALL: i64 = 3;

/// Limits and timings, from the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Records per batch.
    pub max_records: u32,
    /// Encoded bytes per batch (a batch may pass it by one record).
    pub max_bytes: usize,
    /// Longest a record waits in the open batch, ms.
    pub flush_interval_ms: i64,
    /// Calls awaiting an answer at once.
    pub max_in_flight: usize,
    /// How long a batch is retried, from its first attempt, ms.
    pub max_retry_age_ms: i64,
    /// Cap on open plus pending bytes.
    pub max_buffer_bytes: usize,
    /// Cap on the session dictionary's memory.
    pub max_dictionary_bytes: u64,
    /// Timeout given to each call, ms.
    pub timeout_ms: i64,
    /// The host keeps batches on disk: hand over, rather than drop, the
    /// batches that the memory cap or the retry age would drop.
    pub spill: bool,
}

impl Limits {
    /// A config's limits.
    pub fn of(config: &Config) -> Self {
        let b = &config.batch;
        let usize_of = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Limits {
            max_records: b.max_records,
            max_bytes: usize_of(b.max_bytes),
            flush_interval_ms: i64::from(b.flush_interval_ms),
            max_in_flight: usize_of(b.max_in_flight),
            max_retry_age_ms: i64::from(b.max_retry_age_ms),
            max_buffer_bytes: usize_of(config.max_buffer_bytes),
            max_dictionary_bytes: u64::from(config.max_dictionary_bytes),
            timeout_ms: i64::from(config.timeout_ms),
            spill: false,
        }
    }
}

/// What the collector said about a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// An HTTP status, with `Retry-After` in seconds when given.
    Status {
        /// The status.
        status: u16,
        /// `Retry-After`, seconds.
        retry_after_s: Option<u32>,
        /// The error code in the body, where the producer acts on it.
        code: ReplyCode,
    },
    /// No answer: connection refused, reset, timed out (Kong 3.9 calls
    /// back with `:dispatch_status`; on 3.8 the outbox's deadline fires).
    Failed,
}

/// The error codes of a collector's reply that a producer acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyCode {
    /// None of the below.
    Other,
    /// A 409 naming `unknown_dictionary`: the collector lost this
    /// producer's dictionary.
    UnknownDictionary,
    /// A 400 naming `unsupported_revision`: the collector predates the
    /// batch's schema revision.
    UnsupportedRevision,
}

/// What a reply means for the batch it answers. Decided in
/// [`Reply::verdict`] and nowhere else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Committed, or a duplicate of a committed batch.
    Committed,
    /// 409 `unknown_dictionary`: the collector lost this producer's
    /// dictionary; define it all again and resend at once.
    Redefine,
    /// 400 `unsupported_revision`: the collector predates inline addresses;
    /// write them as strings from now on, and resend at once. Final for a
    /// batch without them.
    Downgrade,
    /// 429 busy, 503 store down: come back when the collector says
    /// (`Some` ms), or after the backoff.
    Busy(Option<i64>),
    /// Final: the collector will never take this batch (malformed, too
    /// large, a schema it refuses, an endpoint that is off).
    Refused,
    /// Retried with backoff: no answer, 401 (a key rotated on one side
    /// only heals), 408, 5xx.
    Retry {
        /// The collector refused the signature.
        unauthorized: bool,
    },
}

impl Reply {
    /// What this reply means for its batch.
    pub fn verdict(&self) -> Verdict {
        match *self {
            Reply::Status { status, .. } if (200..300).contains(&status) => Verdict::Committed,
            Reply::Status {
                code: ReplyCode::UnknownDictionary,
                ..
            } => Verdict::Redefine,
            Reply::Status {
                code: ReplyCode::UnsupportedRevision,
                status: 400,
                ..
            } => Verdict::Downgrade,
            Reply::Status {
                status,
                retry_after_s,
                ..
            } if status == 429 || status == 503 => Verdict::Busy(retry_after_s.map(|s| {
                i64::from(s)
                    .saturating_mul(1000)
                    .clamp(0, RETRY_AFTER_CAP_MS)
            })),
            // 401 and 408 are not final: a key rotated on one side only,
            // or a slow read, heal by themselves.
            Reply::Status { status, .. }
                if (400..500).contains(&status) && status != 401 && status != 408 =>
            {
                Verdict::Refused
            }
            Reply::Status { status, .. } => Verdict::Retry {
                unauthorized: status == 401,
            },
            Reply::Failed => Verdict::Retry {
                unauthorized: false,
            },
        }
    }

    /// What an answer says: its `:status` (none when the call failed),
    /// `Retry-After`, and, for a 409 or a 400 only, whether its body (read
    /// through `body`, and only when small) names
    /// [`wire::UNKNOWN_DICTIONARY`] or [`wire::UNSUPPORTED_REVISION`].
    pub fn read(
        status: Option<&str>,
        retry_after: Option<&str>,
        body_size: usize,
        body: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Reply {
        // A failed call comes back with `:dispatch_status` and no status.
        let Some(status) = status.and_then(|s| s.trim().parse::<u16>().ok()) else {
            return Reply::Failed;
        };
        let wanted = match status {
            409 => Some((wire::UNKNOWN_DICTIONARY, ReplyCode::UnknownDictionary)),
            400 => Some((wire::UNSUPPORTED_REVISION, ReplyCode::UnsupportedRevision)),
            _ => None,
        };
        let code = wanted
            .filter(|_| body_size <= wire::MAX_ERROR_BODY_BYTES)
            .and_then(|(name, code)| {
                let name = name.as_bytes();
                body()
                    .is_some_and(|b| b.windows(name.len()).any(|w| w == name))
                    .then_some(code)
            })
            .unwrap_or(ReplyCode::Other);
        Reply::Status {
            status,
            retry_after_s: retry_after.and_then(|s| s.trim().parse().ok()),
            code,
        }
    }
}

/// Cumulative counters, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records appended.
    pub records_buffered: u64,
    /// Records in batches the collector committed.
    pub records_delivered: u64,
    /// Records dropped, by reason (cumulative, unlike batch drops).
    pub dropped: Drops,
    /// Calls made.
    pub batches_sent: u64,
    /// Batches committed.
    pub batches_delivered: u64,
    /// Calls that failed or were refused.
    pub batches_failed: u64,
    /// Calls that were retries.
    pub batches_retried: u64,
    /// Batches given up on.
    pub batches_abandoned: u64,
    /// Calls the collector refused as unauthenticated (401): the chain's
    /// `signing_key` does not match the collector's.
    pub batches_unauthorized: u64,
    /// Batches handed to the host's spool instead of dropped.
    pub batches_spilled: u64,
    /// Records in them.
    pub records_spilled: u64,
}

#[derive(Debug)]
struct Pending {
    batch: SealedBatch,
    /// The drops this batch carries, re-credited if it is abandoned.
    drops: Drops,
    first_try_ms: Option<i64>,
    next_try_ms: i64,
    attempts: u32,
    /// Set while a call is out: its token and deadline.
    in_flight: Option<(u32, i64)>,
    /// Under [`Outbox::sign_ahead`], how far its signature has got.
    signature: Signature,
}

/// The counters every host exports, by the names the filter gives them
/// (`pw:kong_looker:<name>` in Kong's Prometheus plugin), in the order of
/// [`Stats::counters`].
pub const COUNTERS: [&str; 11] = [
    "records_captured",
    "records_delivered",
    "records_dropped_buffer_full",
    "records_dropped_dispatch_failed",
    "records_dropped_capture_error",
    "batches_sent",
    "batches_delivered",
    "batches_failed",
    "batches_retried",
    "batches_abandoned",
    "batches_unauthorized",
];

impl Stats {
    /// The values of [`COUNTERS`], in order.
    pub fn counters(&self) -> [u64; COUNTERS.len()] {
        [
            self.records_buffered,
            self.records_delivered,
            self.dropped.buffer_full,
            self.dropped.dispatch_failed,
            self.dropped.capture_error,
            self.batches_sent,
            self.batches_delivered,
            self.batches_failed,
            self.batches_retried,
            self.batches_abandoned,
            self.batches_unauthorized,
        ]
    }

    /// Adds `other`'s counts (several outboxes' totals).
    pub fn add(&mut self, other: &Stats) {
        let sum = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        sum(&mut self.records_buffered, other.records_buffered);
        sum(&mut self.records_delivered, other.records_delivered);
        sum(&mut self.dropped.buffer_full, other.dropped.buffer_full);
        sum(
            &mut self.dropped.dispatch_failed,
            other.dropped.dispatch_failed,
        );
        sum(&mut self.dropped.capture_error, other.dropped.capture_error);
        sum(
            &mut self.dropped.instance_reset,
            other.dropped.instance_reset,
        );
        sum(&mut self.batches_sent, other.batches_sent);
        sum(&mut self.batches_delivered, other.batches_delivered);
        sum(&mut self.batches_failed, other.batches_failed);
        sum(&mut self.batches_retried, other.batches_retried);
        sum(&mut self.batches_abandoned, other.batches_abandoned);
        sum(&mut self.batches_spilled, other.batches_spilled);
        sum(&mut self.records_spilled, other.records_spilled);
        sum(&mut self.batches_unauthorized, other.batches_unauthorized);
    }
}

/// One worker's outbox. See the module docs.
pub struct Outbox {
    limits: Limits,
    builder: BatchBuilder,
    open_since_ms: Option<i64>,
    pending: VecDeque<Pending>,
    /// The pending batches' bytes, kept as they come and go: summed on
    /// every push instead, a backlog cost each push its length.
    pending_bytes: usize,
    drops: Drops,
    /// Sequences given up on past the [`MAX_ABANDONED`] that the open
    /// batch's drops carry, as runs (first to last): an outage gives up on
    /// batches oldest first, so a day of it is a run or two, where a list
    /// grew by one a batch for as long as it lasted. In order, none
    /// touching the next.
    abandoned_later: VecDeque<(u64, u64)>,
    stats: Stats,
    rng: u64,
    /// No call leaves before this time (the collector failed lately).
    closed_until_ms: i64,
    /// Calls that failed in a row.
    failures: u32,
    /// Batches given up on, waiting for the host's spool.
    spilled: VecDeque<SealedBatch>,
    /// The key batches are signed with ahead of their send, if any.
    signing_key: Option<Vec<u8>>,
    /// The open batch's last exact size, and what it was worked out at.
    sized: Option<Sized>,
}

/// The builder's options under `limits`.
fn builder_options(limits: &Limits, seed: u64) -> BuilderOptions {
    // Too small a dictionary costs wire bytes: each new generation defines
    // again what the batches use. The definitions that every batch carries
    // until the collector acknowledges them stay under half a batch and an
    // eighth of the buffer: past that, a slow or absent collector would
    // leave batches too full of definitions for records, and the buffer too
    // full of batches.
    let max_pending_definitions =
        u64::try_from((limits.max_bytes / 2).min(limits.max_buffer_bytes / 8))
            .unwrap_or(u64::MAX)
            .max(4 * 1024);
    BuilderOptions {
        max_dictionary_bytes: limits.max_dictionary_bytes,
        max_pending_definitions,
        hash_seed: seed,
        ..BuilderOptions::default()
    }
}

/// An exact size of the open batch and the state it held for: the
/// builder's payload and epoch, and the drops its header carried (as
/// [`drops_mark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sized {
    bytes: usize,
    payload: usize,
    epoch: u64,
    drops: [u64; 5],
}

/// What tells the drops of one open batch apart: between two cuts the
/// counts only grow and the abandoned sequences are only appended to, so
/// equal marks are equal drops.
fn drops_mark(d: &Drops) -> [u64; 5] {
    [
        d.buffer_full,
        d.dispatch_failed,
        d.capture_error,
        d.instance_reset,
        u64::try_from(d.abandoned.len()).unwrap_or(u64::MAX),
    ]
}

impl Outbox {
    /// An empty outbox for `producer`; `seed` drives the retry jitter and
    /// the dictionary's hash seed.
    pub fn new(producer: &Producer, limits: Limits, seed: u64) -> Self {
        Outbox {
            builder: BatchBuilder::new(producer, builder_options(&limits, seed)),
            limits,
            open_since_ms: None,
            pending: VecDeque::new(),
            pending_bytes: 0,
            drops: Drops::default(),
            abandoned_later: VecDeque::new(),
            stats: Stats::default(),
            rng: seed | 1,
            closed_until_ms: 0,
            failures: 0,
            spilled: VecDeque::new(),
            signing_key: None,
            sized: None,
        }
    }

    /// Signs each batch with `key` ahead of its send, a slice per push and
    /// per tick; [`Outbox::next_send`] then offers only signed batches. For
    /// a host that would otherwise hash a whole batch on the request path.
    /// An empty key signs nothing.
    pub fn sign_ahead(&mut self, key: &[u8]) {
        self.signing_key = (!key.is_empty()).then(|| key.to_vec());
    }

    /// The `Authorization` value of batch `sequence` under
    /// [`Outbox::sign_ahead`], when its signature is done and fresh.
    pub fn authorization(&self, sequence: u64, now_ms: i64) -> Option<&str> {
        self.pending
            .iter()
            .find(|p| p.batch.sequence == sequence)?
            .signature
            .ready(now_ms.div_euclid(1000))
    }

    /// Hashes up to `budget` bytes of the signatures of the batches next
    /// in line (as many as may be in flight at once, so that a backlog is
    /// not signed long before it can leave).
    #[inline(never)]
    fn sign_some(&mut self, mut budget: usize, now_ms: i64) {
        let Some(key) = &self.signing_key else {
            return;
        };
        let now_s = now_ms.div_euclid(1000);
        let next = self.limits.max_in_flight.max(1);
        for p in self
            .pending
            .iter_mut()
            .filter(|p| p.in_flight.is_none())
            .take(next)
        {
            if budget == 0 {
                return;
            }
            let hashed = p.signature.advance(key, &p.batch.bytes, budget, now_s);
            budget = budget.saturating_sub(hashed);
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits (a chain was reconfigured); batches already cut
    /// keep their size.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Updates the producer, e.g. once the node id is known.
    pub fn set_producer(&mut self, producer: &Producer) {
        self.builder.set_producer(producer);
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Records in the open batch.
    pub fn open_records(&self) -> u32 {
        self.builder.len()
    }

    /// Batches cut and not yet committed.
    pub fn pending_batches(&self) -> usize {
        self.pending.len()
    }

    /// Whether call `token` is out and not yet answered or past its
    /// deadline.
    pub fn is_in_flight(&self, token: u32) -> bool {
        self.pending
            .iter()
            .any(|p| p.in_flight.is_some_and(|(t, _)| t == token))
    }

    /// Whether any call is out.
    pub fn has_call_in_flight(&self) -> bool {
        self.pending.iter().any(|p| p.in_flight.is_some())
    }

    /// Bytes held: the open batch plus every pending batch.
    pub fn buffered_bytes(&self) -> usize {
        let open = if self.builder.is_empty() {
            0
        } else {
            self.builder.encoded_len(0, &self.drops)
        };
        self.pending_bytes().saturating_add(open)
    }

    /// Bytes of the batches cut and not yet acknowledged.
    fn pending_bytes(&self) -> usize {
        debug_assert_eq!(self.pending_bytes, self.summed_pending_bytes());
        self.pending_bytes
    }

    /// [`Outbox::pending_bytes`] batch by batch, for when batches were
    /// rewritten in place.
    fn summed_pending_bytes(&self) -> usize {
        self.pending
            .iter()
            .fold(0, |sum: usize, p| sum.saturating_add(p.batch.bytes.len()))
    }

    /// Takes pending batch `index` out, with its bytes.
    fn remove_pending(&mut self, index: usize) -> Option<Pending> {
        let p = self.pending.remove(index)?;
        self.pending_bytes = self.pending_bytes.saturating_sub(p.batch.bytes.len());
        Some(p)
    }

    /// Counts a request that could not be captured.
    pub fn count_capture_error(&mut self) {
        add(&mut self.drops.capture_error, 1);
        add(&mut self.stats.dropped.capture_error, 1);
    }

    /// Whether a record may give its caller by `key` alone
    /// ([`kong_looker_proto::Memo::identity_by_key`]).
    pub fn knows_identity(&self, key: u64) -> bool {
        self.builder.knows_identity(key)
    }

    /// Whether the builder remembers the endpoint of `key`
    /// ([`kong_looker_proto::Memo::endpoint`]).
    pub fn knows_endpoint(&self, key: u64) -> bool {
        self.builder.knows_endpoint(key)
    }

    /// The builder's hash of a client address it remembers
    /// ([`kong_looker_proto::BatchBuilder::knows_client`]).
    pub fn knows_client(&self, text: &[u8]) -> Option<u64> {
        self.builder.knows_client(text)
    }

    /// Appends a record, cutting the batch when it reaches its limits; a
    /// record that could not be appended is counted.
    pub fn push(&mut self, record: &Record<'_>, now_ms: i64) {
        if !self.try_push(record, now_ms) {
            self.count_capture_error();
        }
    }

    /// [`Outbox::push`] for a record that may give its caller by key alone:
    /// false when the builder no longer knows the key (a cut started a new
    /// dictionary generation). Nothing was then added or counted, and the
    /// producer sends the record again with its caller. Any other failure
    /// is counted.
    pub fn try_push(&mut self, record: &Record<'_>, now_ms: i64) -> bool {
        match self.builder.append(record) {
            Ok(()) => {}
            Err(AppendError::IdentityUnknown) => return false,
            Err(AppendError::BatchFull | AppendError::TimeOutOfRange { .. })
                if !self.builder.is_empty() =>
            {
                // The open batch cannot take this record; a fresh one can.
                self.cut(now_ms);
                match self.builder.append(record) {
                    Ok(()) => {}
                    Err(AppendError::IdentityUnknown) => return false,
                    Err(_) => {
                        self.count_capture_error();
                        return true;
                    }
                }
            }
            Err(_) => {
                self.count_capture_error();
                return true;
            }
        }
        add(&mut self.stats.records_buffered, 1);
        if self.open_since_ms.is_none() {
            self.open_since_ms = Some(now_ms);
        }
        // The open batch's size decides the cut and, with the pending
        // batches, whether the cap is near.
        let open = self.open_size(now_ms);
        if self.builder.len() >= self.limits.max_records || open >= self.limits.max_bytes {
            self.cut(now_ms);
            self.enforce_cap();
        } else if self.pending_bytes().saturating_add(open) > self.limits.max_buffer_bytes {
            self.enforce_cap();
        }
        if self.signing_key.is_some() {
            self.sign_some(SIGN_BYTES_PER_RECORD, now_ms);
        }
        true
    }

    /// The open batch's size after a push: exact, or a bound on it that is
    /// below both limits, so that the push decides as the exact size
    /// would. The exact size works out every key and prefix of the batch
    /// (about 550 Wasm instructions a record); the bound is the last exact
    /// size plus what the contents grew by since, plus the most the
    /// framing can add ([`FRAMING_MAX`]).
    fn open_size(&mut self, now_ms: i64) -> usize {
        let payload = self.builder.payload_len();
        let epoch = self.builder.epoch();
        let drops = drops_mark(&self.drops);
        if let Some(last) = self.sized
            && (last.epoch, last.drops) == (epoch, drops)
            && let Some(grown) = payload.checked_sub(last.payload)
        {
            let bound = last.bytes.saturating_add(grown).saturating_add(FRAMING_MAX);
            if bound < self.limits.max_bytes
                && self.pending_bytes().saturating_add(bound) <= self.limits.max_buffer_bytes
            {
                return bound;
            }
        }
        let bytes = self.builder.encoded_len(now_ms, &self.drops);
        self.sized = Some(Sized {
            bytes,
            payload,
            epoch,
            drops,
        });
        bytes
    }

    /// Housekeeping on a tick: cuts the open batch when it has waited long
    /// enough (or drops alone need reporting), and fails calls whose
    /// deadline passed.
    pub fn tick(&mut self, now_ms: i64) {
        let waited = self
            .open_since_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= self.limits.flush_interval_ms);
        let drops_only =
            self.builder.is_empty() && self.drops != Drops::default() && self.pending.is_empty();
        if waited || drops_only {
            self.cut(now_ms);
        }
        let expired: Vec<u32> = self
            .pending
            .iter()
            .filter_map(|p| p.in_flight)
            .filter(|(_, deadline)| now_ms >= *deadline)
            .map(|(token, _)| token)
            .collect();
        for token in expired {
            self.answered(token, Reply::Failed, now_ms);
        }
        self.enforce_cap();
        self.sign_some(SIGN_BYTES_PER_TICK, now_ms);
    }

    /// The next batch to send, if one is due (and, under
    /// [`Outbox::sign_ahead`], signed) and a call slot is free: its
    /// sequence number and bytes.
    pub fn next_send(&self, now_ms: i64) -> Option<(u64, &[u8])> {
        if now_ms < self.closed_until_ms {
            return None;
        }
        let out = self
            .pending
            .iter()
            .filter(|p| p.in_flight.is_some())
            .count();
        if out >= self.limits.max_in_flight {
            return None;
        }
        let now_s = now_ms.div_euclid(1000);
        let signed = |p: &Pending| self.signing_key.is_none() || p.signature.ready(now_s).is_some();
        self.pending
            .iter()
            .find(|p| p.in_flight.is_none() && p.next_try_ms <= now_ms)
            .filter(|p| signed(p))
            .map(|p| (p.batch.sequence, p.batch.bytes.as_slice()))
    }

    /// The call for batch `sequence` went out with `token`.
    pub fn sent(&mut self, sequence: u64, token: u32, now_ms: i64) {
        let deadline = now_ms
            .saturating_add(
                self.limits
                    .timeout_ms
                    .saturating_mul(HOST_TIMEOUTS_PER_CALL),
            )
            .saturating_add(DEADLINE_GRACE_MS);
        let Some(p) = self.find(sequence) else {
            return;
        };
        let retry = p.attempts > 0;
        p.attempts = p.attempts.saturating_add(1);
        p.first_try_ms.get_or_insert(now_ms);
        p.in_flight = Some((token, deadline));
        if retry {
            add(&mut self.stats.batches_retried, 1);
        }
        add(&mut self.stats.batches_sent, 1);
    }

    /// The host refused to make the call (bad address, no resolver): treat
    /// it as a failed attempt.
    pub fn send_refused(&mut self, sequence: u64, now_ms: i64) {
        if let Some(p) = self.find(sequence) {
            p.attempts = p.attempts.saturating_add(1);
            p.first_try_ms.get_or_insert(now_ms);
        }
        add(&mut self.stats.batches_failed, 1);
        self.close(None, now_ms);
        self.retry_later(sequence, None, now_ms);
    }

    /// The answer to call `token`. Unknown tokens (a call answered after
    /// its deadline) are ignored: the batch was already retried, and the
    /// collector dedupes it.
    pub fn answered(&mut self, token: u32, reply: Reply, now_ms: i64) {
        let Some(index) = self
            .pending
            .iter()
            .position(|p| p.in_flight.is_some_and(|(t, _)| t == token))
        else {
            return;
        };
        let Some(p) = self.pending.get_mut(index) else {
            return;
        };
        p.in_flight = None;
        let sequence = p.batch.sequence;
        match reply.verdict() {
            Verdict::Committed => {
                self.reopen(now_ms);
                if let Some(done) = self.remove_pending(index) {
                    self.builder.acknowledge(done.batch.ack);
                    add(&mut self.stats.batches_delivered, 1);
                    add(
                        &mut self.stats.records_delivered,
                        u64::from(done.batch.record_count),
                    );
                }
            }
            Verdict::Redefine => {
                add(&mut self.stats.batches_failed, 1);
                self.builder.reset_acknowledgements();
                let mut lost = Vec::new();
                for p in self.pending.iter_mut() {
                    p.signature = Signature::None;
                    if !self.builder.redefine_all(&mut p.batch) {
                        lost.push(p.batch.sequence);
                    }
                }
                self.pending_bytes = self.summed_pending_bytes();
                for seq in lost {
                    self.abandon(seq, Reason::DispatchFailed);
                }
                // Resend at once: nothing is wrong with the collector.
                if let Some(p) = self.find(sequence) {
                    p.next_try_ms = now_ms;
                }
            }
            Verdict::Downgrade if p.batch.revision == INLINE_REVISION => {
                add(&mut self.stats.batches_failed, 1);
                self.builder.stop_inlining();
                let mut lost = Vec::new();
                for p in self.pending.iter_mut() {
                    p.signature = Signature::None;
                    if !self.builder.deinline(&mut p.batch) {
                        lost.push(p.batch.sequence);
                    }
                }
                self.pending_bytes = self.summed_pending_bytes();
                for seq in lost {
                    self.abandon(seq, Reason::DispatchFailed);
                }
                if let Some(p) = self.find(sequence) {
                    p.next_try_ms = now_ms;
                }
            }
            Verdict::Busy(delay) => {
                add(&mut self.stats.batches_failed, 1);
                self.close(delay, now_ms);
                self.retry_later(sequence, delay, now_ms);
            }
            Verdict::Refused | Verdict::Downgrade => {
                add(&mut self.stats.batches_failed, 1);
                self.abandon(sequence, Reason::DispatchFailed);
            }
            Verdict::Retry { unauthorized } => {
                add(&mut self.stats.batches_failed, 1);
                if unauthorized {
                    add(&mut self.stats.batches_unauthorized, 1);
                }
                self.close(None, now_ms);
                self.retry_later(sequence, None, now_ms);
            }
        }
    }

    /// The collector answered: the backlog need not wait out the backoffs
    /// it earned while the collector was away.
    fn reopen(&mut self, now_ms: i64) {
        self.failures = 0;
        self.closed_until_ms = 0;
        for p in self.pending.iter_mut() {
            p.next_try_ms = p.next_try_ms.min(now_ms);
        }
    }

    /// Whether a call may leave now (no backoff running) and none of the
    /// outbox's own is due: the moment for a host's spooled batch.
    pub fn may_send_spooled(&self, now_ms: i64) -> bool {
        now_ms >= self.closed_until_ms
            && !self.has_call_in_flight()
            && self.next_send(now_ms).is_none()
    }

    /// The reply to a spooled batch (one sent by the host from its spool,
    /// not by this outbox), judged as any reply is, with the same lane-wide
    /// backoff. Returns whether the spool should delete the batch; a batch
    /// deleted without being committed has its `records` counted as
    /// dropped (`dispatch_failed`) here.
    pub fn spool_answered(&mut self, reply: Reply, records: u32, now_ms: i64) -> bool {
        add(&mut self.stats.batches_sent, 1);
        match reply.verdict() {
            Verdict::Committed => {
                self.reopen(now_ms);
                add(&mut self.stats.batches_delivered, 1);
                add(&mut self.stats.records_delivered, u64::from(records));
                true
            }
            // A spooled batch defines what it uses when it can; one that
            // still misses a definition cannot be repaired any more, nor
            // can one with addresses inline, but later ones will not have
            // them.
            Verdict::Downgrade => {
                add(&mut self.stats.batches_failed, 1);
                self.builder.stop_inlining();
                self.lose(records, Reason::DispatchFailed);
                true
            }
            Verdict::Redefine | Verdict::Refused => {
                add(&mut self.stats.batches_failed, 1);
                self.lose(records, Reason::DispatchFailed);
                true
            }
            Verdict::Busy(delay) => {
                add(&mut self.stats.batches_failed, 1);
                self.close(delay, now_ms);
                false
            }
            Verdict::Retry { unauthorized } => {
                add(&mut self.stats.batches_failed, 1);
                if unauthorized {
                    add(&mut self.stats.batches_unauthorized, 1);
                }
                self.close(None, now_ms);
                false
            }
        }
    }

    /// Records the host's spool gave up on (full, or a write that failed):
    /// counted as dropped for room, and reported in the next batch.
    pub fn count_lost(&mut self, records: u32) {
        self.lose(records, Reason::BufferFull);
    }

    fn lose(&mut self, records: u32, reason: Reason) {
        let (now, total) = match reason {
            Reason::DispatchFailed | Reason::Aged => (
                &mut self.drops.dispatch_failed,
                &mut self.stats.dropped.dispatch_failed,
            ),
            Reason::BufferFull => (
                &mut self.drops.buffer_full,
                &mut self.stats.dropped.buffer_full,
            ),
        };
        add(now, u64::from(records));
        add(total, u64::from(records));
    }

    /// A spilled batch the host could not keep (a write failed, or the
    /// spool made room): its records are dropped for room, and when it is
    /// this producer's (`sequence` given), the collector is told which
    /// sequence it will never see.
    /// The drops it was carrying are reported again (its list of
    /// abandoned sequences only when it is this producer's).
    pub fn spill_lost(&mut self, sequence: Option<u64>, records: u32, carried: &Drops) {
        self.count_lost(records);
        add(&mut self.drops.buffer_full, carried.buffer_full);
        add(&mut self.drops.dispatch_failed, carried.dispatch_failed);
        add(&mut self.drops.capture_error, carried.capture_error);
        add(&mut self.drops.instance_reset, carried.instance_reset);
        if let Some(sequence) = sequence {
            self.note_abandoned(sequence, &carried.abandoned);
        }
    }

    /// The next batch to keep on disk, oldest first.
    pub fn take_spilled(&mut self) -> Option<SealedBatch> {
        self.spilled.pop_front()
    }

    /// Whether batches wait for the spool.
    pub fn has_spilled(&self) -> bool {
        !self.spilled.is_empty()
    }

    /// Hands every batch held over to the spool, the open one cut first
    /// (at shutdown, when the collector cannot take them in time). Calls in
    /// flight stay: their answers may still come.
    pub fn spill_all(&mut self, now_ms: i64) {
        if !self.limits.spill {
            return;
        }
        if !self.builder.is_empty() || self.drops != Drops::default() {
            self.cut(now_ms);
        }
        let idle: Vec<u64> = self
            .pending
            .iter()
            .filter(|p| p.in_flight.is_none())
            .map(|p| p.batch.sequence)
            .collect();
        for sequence in idle {
            self.abandon(sequence, Reason::BufferFull);
        }
    }

    /// Holds every call back after a failure: for `delay_ms` when the
    /// collector named it, else for a jittered backoff that doubles with
    /// each failure in a row.
    fn close(&mut self, delay_ms: Option<i64>, now_ms: i64) {
        self.failures = self.failures.saturating_add(1);
        let delay = match delay_ms {
            Some(d) => d,
            None => {
                let jitter = self.next_random();
                backoff(self.failures, jitter)
            }
        };
        self.closed_until_ms = self.closed_until_ms.max(now_ms.saturating_add(delay));
    }

    /// Cuts the open batch (with the drops counted since the last cut).
    fn cut(&mut self, now_ms: i64) {
        let drops = std::mem::take(&mut self.drops);
        let batch = self.builder.seal(now_ms, &drops);
        // The next batch names the sequences this one had no room for.
        self.refill_abandoned();
        self.open_since_ms = None;
        self.pending_bytes = self.pending_bytes.saturating_add(batch.bytes.len());
        self.pending.push_back(Pending {
            batch,
            drops,
            first_try_ms: None,
            next_try_ms: now_ms,
            attempts: 0,
            in_flight: None,
            signature: Signature::None,
        });
    }

    fn find(&mut self, sequence: u64) -> Option<&mut Pending> {
        self.pending
            .iter_mut()
            .find(|p| p.batch.sequence == sequence)
    }

    /// Schedules another attempt, or abandons the batch past its age.
    fn retry_later(&mut self, sequence: u64, delay_ms: Option<i64>, now_ms: i64) {
        let jitter = self.next_random();
        let max_age = self.limits.max_retry_age_ms;
        let Some(p) = self.find(sequence) else {
            return;
        };
        let age = now_ms.saturating_sub(p.first_try_ms.unwrap_or(now_ms));
        if age >= max_age {
            self.abandon(sequence, Reason::Aged);
            return;
        }
        let delay = delay_ms.unwrap_or_else(|| backoff(p.attempts, jitter));
        p.next_try_ms = now_ms.saturating_add(delay);
    }

    /// Drops a batch, counting its records and re-crediting its drops; or,
    /// when the host spools and the batch was given up for room or age,
    /// hands it over whole (its drops travel inside it).
    fn abandon(&mut self, sequence: u64, reason: Reason) {
        let Some(index) = self
            .pending
            .iter()
            .position(|p| p.batch.sequence == sequence)
        else {
            return;
        };
        let Some(mut p) = self.remove_pending(index) else {
            return;
        };
        if self.limits.spill && matches!(reason, Reason::BufferFull | Reason::Aged) {
            // Self-contained when the builder still holds its generation,
            // so that a collector can read it after this process is gone.
            let _defined = self.builder.redefine_all(&mut p.batch);
            add(&mut self.stats.batches_spilled, 1);
            add(
                &mut self.stats.records_spilled,
                u64::from(p.batch.record_count),
            );
            self.spilled.push_back(p.batch);
            return;
        }
        self.lose(p.batch.record_count, reason);
        // The collector learns which sequence it will never see, so the gap
        // is explained rather than missing.
        self.note_abandoned(p.batch.sequence, &p.drops.abandoned);
        add(&mut self.drops.buffer_full, p.drops.buffer_full);
        add(&mut self.drops.dispatch_failed, p.drops.dispatch_failed);
        add(&mut self.drops.capture_error, p.drops.capture_error);
        add(&mut self.drops.instance_reset, p.drops.instance_reset);
        add(&mut self.stats.batches_abandoned, 1);
    }

    /// Notes that the collector will never see batch `sequence`, nor those
    /// it was to report (`carried`): in the open batch's drops while they
    /// have room, in runs after that.
    fn note_abandoned(&mut self, sequence: u64, carried: &[u64]) {
        self.note_run(sequence, sequence);
        // A batch's list is runs too, as [`Outbox::refill_abandoned`] made it.
        let mut rest = carried;
        while let Some((&first, tail)) = rest.split_first() {
            // How many follow `first` one apart (a host's spool may hand
            // back any numbers, u64::MAX among them).
            let len = tail
                .iter()
                .scan(first, |prev, &s| {
                    let next = prev.checked_add(1).filter(|&n| n == s)?;
                    *prev = next;
                    Some(())
                })
                .count();
            let last = tail.get(len.saturating_sub(1)).filter(|_| len > 0);
            self.note_run(first, last.copied().unwrap_or(first));
            rest = tail.get(len..).unwrap_or_default();
        }
    }

    /// [`Outbox::note_abandoned`] for the sequences `first..=last`.
    fn note_run(&mut self, mut first: u64, last: u64) {
        while self.abandoned_later.is_empty()
            && self.drops.abandoned.len() < MAX_ABANDONED
            && first <= last
        {
            self.drops.abandoned.push(first);
            match first.checked_add(1) {
                Some(next) => first = next,
                None => return,
            }
        }
        if first > last {
            return;
        }
        // Joined to the runs beside it: sequences are given up on once.
        let runs = &mut self.abandoned_later;
        let at = runs.partition_point(|&(f, _)| f < first);
        let before = at.checked_sub(1).filter(|&i| {
            runs.get(i)
                .is_some_and(|&(_, l)| l.checked_add(1) == Some(first))
        });
        let after = runs
            .get(at)
            .is_some_and(|&(f, _)| last.checked_add(1) == Some(f));
        match (before, after) {
            (Some(i), true) => {
                let joined = runs.remove(at).map_or(last, |(_, l)| l);
                if let Some(run) = runs.get_mut(i) {
                    run.1 = joined;
                }
            }
            (Some(i), false) => {
                if let Some(run) = runs.get_mut(i) {
                    run.1 = last;
                }
            }
            (None, true) => {
                if let Some(run) = runs.get_mut(at) {
                    run.0 = first;
                }
            }
            (None, false) => runs.insert(at, (first, last)),
        }
    }

    /// Fills the open batch's drops from the runs, up to what a batch
    /// carries.
    fn refill_abandoned(&mut self) {
        while self.drops.abandoned.len() < MAX_ABANDONED {
            let Some((first, last)) = self.abandoned_later.pop_front() else {
                return;
            };
            let room = MAX_ABANDONED.saturating_sub(self.drops.abandoned.len()) as u64;
            let end = last.min(first.saturating_add(room.saturating_sub(1)));
            self.drops.abandoned.extend(first..=end);
            if end < last {
                self.abandoned_later
                    .push_front((end.saturating_add(1), last));
            }
        }
    }

    /// Keeps open plus pending bytes under the cap by dropping the oldest
    /// batches that are not out on a call.
    fn enforce_cap(&mut self) {
        while self.buffered_bytes() > self.limits.max_buffer_bytes {
            let Some(oldest) = self
                .pending
                .iter()
                .find(|p| p.in_flight.is_none())
                .map(|p| p.batch.sequence)
            else {
                return;
            };
            self.abandon(oldest, Reason::BufferFull);
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[derive(Clone, Copy)]
enum Reason {
    /// Refused for good, or undecodable by the collector.
    DispatchFailed,
    /// Retried past its age.
    Aged,
    /// Dropped to keep under the memory cap.
    BufferFull,
}

/// The delay before attempt `attempts + 1`: doubling from
/// [`BACKOFF_BASE_MS`] to [`BACKOFF_CAP_MS`], with full jitter between half
/// and all of it, so that workers that failed together do not retry
/// together.
fn backoff(attempts: u32, jitter: u64) -> i64 {
    let exp = attempts.saturating_sub(1).min(16);
    let full = BACKOFF_BASE_MS
        .saturating_mul(1i64 << exp)
        .min(BACKOFF_CAP_MS);
    let half = full / 2;
    let spread = u64::try_from(half).unwrap_or(1).max(1);
    half.saturating_add(i64::try_from(jitter.checked_rem(spread).unwrap_or(0)).unwrap_or(0))
}

fn add(counter: &mut u64, n: u64) {
    *counter = counter.saturating_add(n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_looker_proto::{BatchReader, RouteRef};
    use wasm_bindgen_test::wasm_bindgen_test;

    const T0: i64 = 1_767_614_400_000;

    fn limits() -> Limits {
        Limits {
            max_records: 100,
            max_bytes: 256 * 1024,
            flush_interval_ms: 1000,
            max_in_flight: 2,
            max_retry_age_ms: 60_000,
            max_buffer_bytes: 4 << 20,
            max_dictionary_bytes: 16 << 20,
            timeout_ms: 5000,
            spill: false,
        }
    }

    fn record(i: u32) -> Record<'static> {
        let paths = ["/a", "/b", "/c", "/d"];
        Record {
            started_at_ms: T0,
            route: RouteRef {
                route_name: "r",
                ..RouteRef::default()
            },
            path: paths[(i % 4) as usize],
            status: 200,
            latency_total_us: 1000,
            ..Record::default()
        }
    }

    fn ok() -> Reply {
        Reply::Status {
            status: 204,
            retry_after_s: None,
            code: ReplyCode::Other,
        }
    }

    fn status(status: u16) -> Reply {
        Reply::Status {
            status,
            retry_after_s: None,
            code: ReplyCode::Other,
        }
    }

    /// Sends every due batch; returns (sequence, token, bytes).
    fn send_all(o: &mut Outbox, now: i64, next_token: &mut u32) -> Vec<(u64, u32, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((seq, body)) = o.next_send(now) {
            let body = body.to_vec();
            *next_token += 1;
            o.sent(seq, *next_token, now);
            out.push((seq, *next_token, body));
        }
        out
    }

    fn outbox(l: Limits) -> Outbox {
        Outbox::new(&Producer::default(), l, 42)
    }

    const KEY: &[u8] = b"a-signing-key-of-some-length";

    /// The batch `next_send` offers, with its header, checked against the
    /// collector's verification.
    fn signed_send(o: &Outbox, now: i64) -> Option<(u64, String)> {
        let (seq, body) = o.next_send(now)?;
        let header = o.authorization(seq, now).expect("offered, so signed");
        assert_eq!(
            kong_looker_proto::signing::verify(KEY, Some(header), body, now / 1000, 300),
            Ok(())
        );
        Some((seq, header.to_owned()))
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn signing_ahead_offers_a_batch_once_pushes_have_signed_it() {
        let mut o = outbox(limits());
        o.sign_ahead(KEY);
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        assert_eq!(o.pending_batches(), 1, "cut at 100 records");
        let len = o.pending.front().map_or(0, |p| p.batch.bytes.len());
        assert!(len > SIGN_BYTES_PER_RECORD, "needs more than one push");
        assert!(o.next_send(T0).is_none(), "not signed yet");
        assert!(o.authorization(0, T0).is_none());
        // Each push signs a slice of it.
        let mut pushes = 0;
        while o.next_send(T0).is_none() {
            o.push(&record(pushes), T0);
            pushes += 1;
        }
        // The push that cut it signed the first slice.
        assert_eq!(pushes as usize, len.div_ceil(SIGN_BYTES_PER_RECORD) - 1);
        let (seq, _) = signed_send(&o, T0).expect("signed");
        o.sent(seq, 1, T0);
        o.answered(1, ok(), T0);
        assert_eq!(o.stats().batches_delivered, 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn signing_ahead_on_a_quiet_worker_is_done_by_the_tick_that_cuts() {
        let mut o = outbox(limits());
        o.sign_ahead(KEY);
        for i in 0..10 {
            o.push(&record(i), T0);
        }
        o.tick(T0 + 1000);
        assert!(
            signed_send(&o, T0 + 1000).is_some(),
            "cut and signed at once"
        );
        // Without a key nothing is signed, and nothing waits for it.
        let mut o = outbox(limits());
        o.sign_ahead(b"");
        o.push(&record(0), T0);
        o.tick(T0 + 1000);
        let (seq, _) = o.next_send(T0 + 1000).expect("due");
        assert!(o.authorization(seq, T0 + 1000).is_none());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_batch_held_back_is_signed_again_with_a_fresh_time() {
        let mut o = outbox(limits());
        o.sign_ahead(KEY);
        o.push(&record(0), T0);
        o.tick(T0 + 1000);
        let (seq, first) = signed_send(&o, T0 + 1000).expect("signed");
        o.sent(seq, 1, T0 + 1000);
        o.answered(1, status(503), T0 + 1000);
        // Back long after: the old signature would be refused as stale.
        let later = T0 + 1000 + (crate::signature::MAX_AGE_S + 5) * 1000;
        assert!(o.next_send(later).is_none(), "not with the old signature");
        o.tick(later);
        let (_, again) = signed_send(&o, later).expect("signed again");
        assert_ne!(first, again);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_batch_rewritten_for_a_collector_that_lost_the_dictionary_is_signed_again() {
        let mut o = outbox(limits());
        o.sign_ahead(KEY);
        o.push(&record(0), T0);
        o.tick(T0 + 1000);
        let (seq, _) = signed_send(&o, T0 + 1000).expect("signed");
        o.sent(seq, 1, T0 + 1000);
        let lost = Reply::Status {
            status: 409,
            retry_after_s: None,
            code: ReplyCode::UnknownDictionary,
        };
        o.answered(1, lost, T0 + 1000);
        assert!(o.next_send(T0 + 1000).is_none(), "its bytes changed");
        o.tick(T0 + 1100);
        // signed_send checks the new signature against the new bytes.
        assert_eq!(signed_send(&o, T0 + 1100).map(|(s, _)| s), Some(seq));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cuts_at_the_record_count_and_the_interval() {
        let mut o = outbox(limits());
        for i in 0..250 {
            o.push(&record(i), T0);
        }
        assert_eq!(o.pending_batches(), 2, "two full batches of 100");
        assert_eq!(o.open_records(), 50);
        o.tick(T0 + 999);
        assert_eq!(o.pending_batches(), 2, "the rest waits for the interval");
        o.tick(T0 + 1000);
        assert_eq!(o.pending_batches(), 3);
        assert_eq!(o.open_records(), 0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cuts_at_the_byte_budget() {
        let mut o = outbox(Limits {
            max_records: 100_000,
            max_bytes: 2048,
            max_in_flight: 64,
            ..limits()
        });
        for i in 0..2000 {
            o.push(&record(i), T0);
        }
        let mut token = 0;
        let sent = send_all(&mut o, T0, &mut token);
        assert!(sent.len() > 5);
        for (_, _, body) in &sent {
            // Over the budget by at most one record.
            assert!(body.len() < 2048 + 64, "{}", body.len());
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cuts_where_sizing_every_push_exactly_would() {
        // The push bounds the open batch's size between exact sizings. Its
        // batches must be those of a builder sized exactly after every
        // record, byte for byte, whatever the budget: new hosts keep adding
        // definitions, some records carry request ids, and the columns'
        // length prefixes grow a byte as they pass 128 bytes.
        let hosts: Vec<String> = (0..3000).map(|i| format!("h{}.example", i / 20)).collect();
        let ids: Vec<String> = (0..3000u32).map(|i| format!("{i:032x}")).collect();
        let rec = |i: usize| Record {
            host: &hosts[i],
            request_id: if i.is_multiple_of(50) { &ids[i] } else { "" },
            ..record(i as u32)
        };
        for max_bytes in (6000..9000).step_by(97) {
            let l = Limits {
                max_records: 100_000,
                max_bytes,
                max_in_flight: 1000,
                ..limits()
            };
            let mut o = outbox(l.clone());
            let mut exact = BatchBuilder::new(&Producer::default(), builder_options(&l, 42));
            let mut expected = Vec::new();
            for i in 0..hosts.len() {
                o.push(&rec(i), T0);
                exact.append(&rec(i)).unwrap();
                if exact.encoded_len(T0, &Drops::default()) >= l.max_bytes {
                    expected.push(exact.seal(T0, &Drops::default()).bytes);
                }
            }
            let mut token = 0;
            let sent: Vec<Vec<u8>> = send_all(&mut o, T0, &mut token)
                .into_iter()
                .map(|(_, _, body)| body)
                .collect();
            assert!(expected.len() > 5, "{}", expected.len());
            assert_eq!(
                sent.get(..expected.len()),
                Some(&expected[..]),
                "max_bytes {max_bytes}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_2xx_acknowledges_and_later_batches_stop_defining() {
        let mut o = outbox(limits());
        let mut token = 0;
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let first = send_all(&mut o, T0, &mut token);
        o.answered(first[0].1, ok(), T0 + 10);
        assert_eq!(o.pending_batches(), 0);
        for i in 0..100 {
            o.push(&record(i), T0 + 20);
        }
        let second = send_all(&mut o, T0 + 20, &mut token);
        let reader = BatchReader::default();
        let a = reader.decode(&first[0].2).unwrap();
        let b = reader.decode(&second[0].2).unwrap();
        assert!(!a.definitions().strings.is_empty());
        assert!(
            b.definitions().strings.is_empty(),
            "acknowledged entries are not resent"
        );
        assert_eq!(o.stats().records_delivered, 100);
        assert_eq!(b.sequence, a.sequence + 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn failures_retry_with_backoff_under_the_same_sequence() {
        let mut o = outbox(limits());
        let mut token = 0;
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let first = send_all(&mut o, T0, &mut token);
        o.answered(first[0].1, Reply::Failed, T0 + 5);
        assert!(o.next_send(T0 + 5).is_none(), "not at once");
        // First backoff: between 250 and 500 ms.
        assert!(o.next_send(T0 + 5 + 250).is_none() || o.next_send(T0 + 5 + 500).is_some());
        let again = send_all(&mut o, T0 + 600, &mut token);
        assert_eq!(
            again[0].0, first[0].0,
            "same sequence, so the collector dedupes"
        );
        assert_eq!(again[0].2, first[0].2, "same bytes");
        assert_eq!(o.stats().batches_retried, 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn retry_after_is_honoured() {
        let mut o = outbox(limits());
        let mut token = 0;
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        o.answered(
            s[0].1,
            Reply::Status {
                status: 429,
                retry_after_s: Some(7),
                code: ReplyCode::Other,
            },
            T0,
        );
        assert!(o.next_send(T0 + 6_999).is_none());
        assert!(o.next_send(T0 + 7_000).is_some());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_call_past_its_deadline_fails_and_a_late_answer_is_ignored() {
        let mut o = outbox(limits());
        let mut token = 0;
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        o.tick(T0 + 15_999);
        assert_eq!(o.stats().batches_failed, 0);
        o.tick(T0 + 16_000);
        assert_eq!(
            o.stats().batches_failed,
            1,
            "three host timeouts plus grace passed"
        );
        o.answered(s[0].1, ok(), T0 + 17_000);
        assert_eq!(o.pending_batches(), 1, "the late answer's token is stale");
        let again = send_all(&mut o, T0 + 60_000, &mut token);
        o.answered(again[0].1, ok(), T0 + 60_010);
        assert_eq!(o.pending_batches(), 0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_failure_closes_the_outbox_for_a_growing_backoff_and_success_reopens_it() {
        let mut o = outbox(Limits {
            max_in_flight: 1,
            ..limits()
        });
        let mut token = 0;
        for i in 0..1000 {
            o.push(&record(i), T0);
        }
        assert_eq!(o.pending_batches(), 10);
        let mut now = T0;
        let mut gaps = Vec::new();
        // The collector is away: each probe fails; one call per opening.
        for _ in 0..5 {
            let mut opened = now;
            while o.next_send(opened).is_none() {
                opened += 10;
                assert!(opened < now + 60_000, "the outbox never reopened");
            }
            gaps.push(opened - now);
            now = opened;
            let s = send_all(&mut o, now, &mut token);
            assert_eq!(s.len(), 1, "one probe per opening");
            for (_, t, _) in s {
                o.answered(t, Reply::Failed, now);
            }
            assert!(o.next_send(now).is_none(), "closed right after a failure");
        }
        assert!(
            gaps.windows(2).skip(1).all(|w| w[1] >= w[0]),
            "backoff grows: {gaps:?}"
        );
        assert!(*gaps.last().unwrap() >= 2_000, "{gaps:?}");
        // Back: one success reopens at once, and the backlog is due now.
        let opened = (now..)
            .step_by(10)
            .find(|&t| o.next_send(t).is_some())
            .unwrap();
        let s = send_all(&mut o, opened, &mut token);
        o.answered(s[0].1, ok(), opened);
        let rest = send_all(&mut o, opened, &mut token);
        assert!(
            !rest.is_empty(),
            "the backlog does not wait out old backoffs"
        );
        assert_eq!(o.stats().batches_unauthorized, 0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_refused_signature_is_retried_and_counted_as_unauthorized() {
        let mut o = outbox(limits());
        let mut token = 0;
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        o.answered(s[0].1, status(401), T0);
        assert_eq!(o.stats().batches_unauthorized, 1);
        assert_eq!(o.pending_batches(), 1, "kept: a key rotation may fix it");
        assert!(o.next_send(T0).is_none(), "and the outbox backs off");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_answer_is_read_from_its_status_retry_after_and_409_body() {
        let never = || -> Option<Vec<u8>> { panic!("body read for no reason") };
        assert_eq!(Reply::read(None, None, 0, never), Reply::Failed);
        assert_eq!(Reply::read(Some("bad"), None, 0, never), Reply::Failed);
        assert_eq!(Reply::read(Some("204"), None, 0, never), ok());
        assert_eq!(
            Reply::read(Some("503"), Some(" 7 "), 10, never),
            Reply::Status {
                status: 503,
                retry_after_s: Some(7),
                code: ReplyCode::Other
            }
        );
        let body = br#"{"error":"unknown_dictionary","message":"..."}"#.to_vec();
        let lost = Reply::read(Some("409"), None, body.len(), || Some(body.clone()));
        assert!(matches!(
            lost,
            Reply::Status {
                code: ReplyCode::UnknownDictionary,
                ..
            }
        ));
        let other = br#"{"error":"conflicting_definition"}"#.to_vec();
        assert_eq!(
            Reply::read(Some("409"), None, other.len(), || Some(other.clone())),
            status(409)
        );
        assert_eq!(
            Reply::read(Some("409"), None, 1 << 20, never),
            status(409),
            "a large body is not read"
        );
        let old = br#"{"error":"unsupported_revision","message":"..."}"#.to_vec();
        assert_eq!(
            Reply::read(Some("400"), None, old.len(), || Some(old.clone())),
            Reply::Status {
                status: 400,
                retry_after_s: None,
                code: ReplyCode::UnsupportedRevision
            }
        );
        assert_eq!(
            Reply::read(Some("422"), None, old.len(), never),
            status(422),
            "only a 400 names a revision"
        );
    }

    /// A record from client address `i` (a distinct IPv4 address each).
    fn from_address(i: u32, text: &mut String) -> Record<'_> {
        use std::fmt::Write;
        text.clear();
        let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
        let _ = write!(text, "{a}.{b}.{c}.{d}");
        Record {
            client_address: text,
            ..record(i)
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_collector_that_predates_inline_addresses_gets_strings_and_nothing_is_lost() {
        let mut o = outbox(limits());
        let mut token = 0;
        let mut text = String::new();
        for i in 0..300 {
            o.push(&from_address(i, &mut text), T0);
        }
        o.tick(T0 + 1000);
        // A revision-2 collector: it refuses what it cannot read, and
        // commits the rest.
        let reader = BatchReader::default();
        let mut dict = kong_looker_proto::Dictionary::new(0);
        let (mut refused, mut rows) = (0, 0);
        let mut now = T0 + 1000;
        while o.pending_batches() > 0 {
            for (_, t, bytes) in send_all(&mut o, now, &mut token) {
                let reply = if v1_revision(&bytes) > 2 {
                    refused += 1;
                    let body = br#"{"error":"unsupported_revision"}"#.to_vec();
                    Reply::read(Some("400"), None, body.len(), || Some(body.clone()))
                } else {
                    let batch = reader.decode(&bytes).unwrap();
                    dict.apply(&batch, reader.limits()).unwrap();
                    for row in batch.rows(&dict).unwrap() {
                        assert!(row.client_address.is_some_and(|a| a.starts_with("10.")));
                        rows += 1;
                    }
                    ok()
                };
                o.answered(t, reply, now);
            }
            now += 100;
            assert!(now < T0 + 60_000);
        }
        assert!(refused > 0, "the first batches had addresses inline");
        assert_eq!(rows, 300, "every record reached the old collector");
        assert_eq!(o.stats().dropped.dispatch_failed, 0);
        // Later batches keep their addresses as strings.
        for i in 300..400 {
            o.push(&from_address(i, &mut text), now);
        }
        o.tick(now + 1000);
        let s = send_all(&mut o, now + 1000, &mut token);
        assert_eq!(v1_revision(&s[0].2), 1);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_unsupported_revision_without_inline_addresses_is_final() {
        let mut o = outbox(limits());
        let mut token = 0;
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        assert_eq!(v1_revision(&s[0].2), 1);
        let body = br#"{"error":"unsupported_revision"}"#.to_vec();
        let reply = Reply::read(Some("400"), None, body.len(), || Some(body.clone()));
        o.answered(s[0].1, reply, T0);
        assert_eq!(o.pending_batches(), 0, "nothing to rewrite: dropped");
        assert_eq!(o.stats().dropped.dispatch_failed, 100);
    }

    /// The builder writes `schema_revision` (field 1, a one-byte varint)
    /// first.
    fn v1_revision(bytes: &[u8]) -> u32 {
        match bytes {
            [0x08, revision, ..] => u32::from(*revision),
            _ => 0,
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn in_flight_calls_are_bounded() {
        let mut o = outbox(limits());
        let mut token = 0;
        for i in 0..500 {
            o.push(&record(i), T0);
        }
        assert_eq!(send_all(&mut o, T0, &mut token).len(), 2);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn batches_past_the_retry_age_are_dropped_and_counted_in_the_next_batch() {
        let mut o = outbox(Limits {
            max_retry_age_ms: 10_000,
            ..limits()
        });
        let mut token = 0;
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let mut now = T0;
        let mut lost = std::collections::BTreeSet::new();
        loop {
            let s = send_all(&mut o, now, &mut token);
            for (seq, t, _) in s {
                lost.insert(seq);
                o.answered(t, status(503), now);
            }
            if o.pending_batches() == 0 {
                break;
            }
            now += 1_000;
            assert!(now < T0 + 60_000);
        }
        assert_eq!(o.stats().dropped.dispatch_failed, 100);
        for i in 0..10 {
            o.push(&record(i), now);
        }
        o.tick(now + 1_000);
        // The outbox stays closed for the backoff the failures earned.
        let open = (now + 1_000..)
            .step_by(100)
            .find(|&t| o.next_send(t).is_some())
            .unwrap();
        let s = send_all(&mut o, open, &mut token);
        let b = BatchReader::default().decode(&s[0].2).unwrap();
        assert_eq!(
            b.drops.dispatch_failed, 100,
            "the loss travels to the collector"
        );
        assert_eq!(
            b.drops
                .abandoned
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            lost,
            "and so do the sequences it will never see"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_long_outage_keeps_its_abandoned_sequences_small_and_reports_each_once() {
        // A batch a record, and room for a few: every push gives one up.
        let mut o = outbox(Limits {
            max_records: 1,
            max_buffer_bytes: 8 * 1024,
            max_retry_age_ms: i64::MAX,
            ..limits()
        });
        let pushes = 8_000;
        for i in 0..pushes {
            o.push(&record(i), T0);
            // The runs stay as many as the places that hold lists: the
            // pending batches, and the holes the outage's start left.
            let held = o.drops.abandoned.len() + o.abandoned_later.len();
            assert!(held <= MAX_ABANDONED + 400, "{held} held after {i} pushes");
        }
        assert!(o.stats().batches_abandoned > 7_000);
        // The collector is back: every sequence arrives or is reported given
        // up, once.
        let (mut token, mut now) = (0, T0);
        let mut seen = std::collections::BTreeMap::new();
        while o.pending_batches() > 0 || o.drops != Drops::default() {
            now += 1_000;
            o.tick(now);
            for (seq, t, bytes) in send_all(&mut o, now, &mut token) {
                let batch = BatchReader::default().decode(&bytes).unwrap();
                for s in std::iter::once(seq).chain(batch.drops.abandoned.iter().copied()) {
                    *seen.entry(s).or_insert(0) += 1;
                }
                o.answered(t, ok(), now);
            }
            assert!(now < T0 + 3_600_000, "drained");
        }
        // Sequences start at 1.
        let sequences = o.builder.next_sequence() - 1;
        assert_eq!(seen.len() as u64, sequences, "every sequence accounted for");
        assert!(seen.values().all(|&n| n == 1), "each once");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn sequences_a_spool_hands_back_are_taken_whatever_they_are() {
        let mut o = outbox(limits());
        let odd = [u64::MAX - 1, u64::MAX, 3, 4, 9, u64::MAX];
        for round in 0..3 {
            let carried = Drops {
                abandoned: odd.to_vec(),
                ..Drops::default()
            };
            o.spill_lost(Some(1_000 + round), 0, &carried);
        }
        // Past what a batch reports, into runs, and out again.
        for i in 0..400 {
            o.note_abandoned(10_000 + 2 * i, &odd);
        }
        let mut reported = 0;
        while o.drops != Drops::default() {
            reported += o.drops.abandoned.len();
            o.drops = Drops::default();
            o.refill_abandoned();
        }
        assert_eq!(reported, 3 * 7 + 400 * 7);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_abandoned_batch_gives_back_the_drops_it_carried() {
        let mut o = outbox(limits());
        let mut token = 0;
        o.count_capture_error();
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        assert_eq!(
            BatchReader::default()
                .decode(&s[0].2)
                .unwrap()
                .drops
                .capture_error,
            1
        );
        o.answered(s[0].1, status(400), T0);
        assert_eq!(o.pending_batches(), 0, "a malformed verdict is final");
        o.tick(T0 + 100);
        let s = send_all(&mut o, T0 + 100, &mut token);
        let d = BatchReader::default().decode(&s[0].2).unwrap().drops;
        assert_eq!((d.capture_error, d.dispatch_failed), (1, 100));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn memory_cap_drops_the_oldest_batches_first() {
        let mut o = outbox(Limits {
            max_records: 1000,
            max_bytes: 16 * 1024,
            max_buffer_bytes: 64 * 1024,
            ..limits()
        });
        for i in 0..50_000 {
            o.push(&record(i), T0);
            assert!(o.buffered_bytes() <= 64 * 1024 + 16 * 1024);
        }
        let dropped = o.stats().dropped.buffer_full;
        assert!(dropped > 0);
        assert_eq!(
            dropped + u64::from(o.open_records()) + 1000 * o.pending_batches() as u64,
            50_000,
            "every record is pending or counted"
        );
    }

    /// The running count of pending bytes against the batches themselves.
    fn assert_pending_bytes(o: &Outbox, step: &str) {
        let held: usize = o.pending.iter().map(|p| p.batch.bytes.len()).sum();
        assert_eq!(o.pending_bytes, held, "after {step}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_pending_bytes_follow_every_batch_in_and_out() {
        let mut o = outbox(limits());
        let mut token = 0;
        let mut text = String::new();
        let mut now = T0;
        let mut push = |o: &mut Outbox, from: u32, now: i64| {
            for i in from..from + 250 {
                o.push(&from_address(i, &mut text), now);
            }
        };
        push(&mut o, 0, now);
        assert!(o.pending_batches() > 1);
        assert_pending_bytes(&o, "cuts");
        let s = send_all(&mut o, now, &mut token);
        o.answered(s[0].1, ok(), now);
        assert_pending_bytes(&o, "a commit");
        o.answered(s[1].1, status(503), now);
        assert_pending_bytes(&o, "a failure");
        // Cut after the commit: without the definitions it acknowledged.
        push(&mut o, 250, now);
        let before = o.pending_bytes;
        // Rewritten in place: defined in full, then without inline addresses.
        now += 60_000;
        let s = send_all(&mut o, now, &mut token);
        let lost = Reply::Status {
            status: 409,
            retry_after_s: None,
            code: ReplyCode::UnknownDictionary,
        };
        o.answered(s[0].1, lost, now);
        assert!(o.pending_bytes > before, "the definitions added");
        assert_pending_bytes(&o, "the dictionary redefined");
        let s = send_all(&mut o, now, &mut token);
        let body = br#"{"error":"unsupported_revision"}"#.to_vec();
        o.answered(
            s[0].1,
            Reply::read(Some("400"), None, body.len(), || Some(body.clone())),
            now,
        );
        assert_pending_bytes(&o, "addresses taken out of line");
        // The cap drops the oldest; the retry age the rest.
        o.set_limits(Limits {
            max_buffer_bytes: 24 * 1024,
            ..limits()
        });
        for from in (500..5_000).step_by(250) {
            push(&mut o, from, now);
            assert_pending_bytes(&o, "the cap");
        }
        assert!(o.stats().dropped.buffer_full > 0);
        now += 120_000;
        for (_, t, _) in send_all(&mut o, now, &mut token) {
            o.answered(t, status(503), now);
        }
        assert_pending_bytes(&o, "the retry age");
        o.tick(now + 10_000_000);
        while let Some((seq, _)) = o.next_send(now + 10_000_000) {
            token += 1;
            o.sent(seq, token, now + 10_000_000);
            o.answered(token, ok(), now + 10_000_000);
        }
        assert_eq!(o.pending_batches(), 0);
        assert_pending_bytes(&o, "every batch delivered");
        assert_eq!(o.pending_bytes, 0);
    }

    /// Decodes a batch on a collector that has never seen its producer.
    fn rows_on_a_fresh_collector(bytes: &[u8]) -> usize {
        let reader = BatchReader::default();
        let batch = reader.decode(bytes).unwrap();
        let mut dict = kong_looker_proto::Dictionary::new(batch.generation);
        dict.apply(&batch, reader.limits()).unwrap();
        batch.rows(&dict).unwrap().count()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn with_a_spool_the_memory_cap_hands_batches_over_whole_instead_of_dropping() {
        let mut o = outbox(Limits {
            max_records: 1000,
            max_bytes: 16 * 1024,
            max_buffer_bytes: 64 * 1024,
            spill: true,
            ..limits()
        });
        let mut token = 0;
        // The first batch is acknowledged, so later ones would normally
        // leave its definitions out.
        for i in 0..1000 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        o.answered(s[0].1, ok(), T0);
        let mut spilled = Vec::new();
        for i in 0..50_000 {
            o.push(&record(i), T0);
            while let Some(b) = o.take_spilled() {
                spilled.push(b);
            }
        }
        assert_eq!(o.stats().dropped.buffer_full, 0);
        let kept: u64 = spilled.iter().map(|b| u64::from(b.record_count)).sum();
        assert_eq!(o.stats().records_spilled, kept);
        assert_eq!(
            kept + u64::from(o.open_records()) + 1000 * o.pending_batches() as u64,
            50_000,
            "every record is held or spilled"
        );
        for b in &spilled {
            assert_eq!(rows_on_a_fresh_collector(&b.bytes), b.record_count as usize);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn with_a_spool_batches_past_the_retry_age_are_spilled_and_refusals_still_dropped() {
        let mut o = outbox(Limits {
            max_retry_age_ms: 10_000,
            spill: true,
            ..limits()
        });
        let mut token = 0;
        for i in 0..200 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        o.answered(s[0].1, status(400), T0);
        o.answered(s[1].1, Reply::Failed, T0);
        let mut now = T0;
        while o.pending_batches() > 0 {
            for (_, t, _) in send_all(&mut o, now, &mut token) {
                o.answered(t, Reply::Failed, now);
            }
            now += 1_000;
            o.tick(now);
            assert!(now < T0 + 60_000);
        }
        assert_eq!(o.stats().dropped.dispatch_failed, 100, "the refused batch");
        // The aged batch, and the report of the refusal that was cut
        // alone and aged too: the report travels in the spool as well.
        let spilled: Vec<_> = std::iter::from_fn(|| o.take_spilled()).collect();
        let records: u32 = spilled.iter().map(|b| b.record_count).sum();
        assert_eq!((records, o.stats().records_spilled), (100, 100));
        let reported: u64 = spilled
            .iter()
            .map(|b| {
                BatchReader::default()
                    .decode(&b.bytes)
                    .unwrap()
                    .drops
                    .dispatch_failed
            })
            .sum();
        assert_eq!(reported, 100);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_spooled_send_is_judged_as_any_reply_with_the_same_backoff() {
        let mut o = outbox(Limits {
            spill: true,
            ..limits()
        });
        assert!(o.may_send_spooled(T0));
        assert!(!o.spool_answered(Reply::Failed, 10, T0), "kept for later");
        assert!(!o.may_send_spooled(T0), "the lane backs off");
        let open = (T0..)
            .step_by(100)
            .find(|&t| o.may_send_spooled(t))
            .unwrap();
        assert!(o.spool_answered(ok(), 10, open));
        assert!(o.may_send_spooled(open), "success reopens at once");
        assert!(o.spool_answered(status(400), 7, open), "refused: deleted");
        assert_eq!(o.stats().records_delivered, 10);
        assert_eq!(o.stats().dropped.dispatch_failed, 7);
        // A batch waiting in memory goes before the spool.
        o.push(&record(1), open);
        o.tick(open + 2_000);
        assert!(!o.may_send_spooled(open + 2_000));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_collector_that_lost_the_dictionary_gets_it_all_again() {
        let mut o = outbox(limits());
        let mut token = 0;
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        o.answered(s[0].1, ok(), T0);
        for i in 0..100 {
            o.push(&record(i), T0);
        }
        let s = send_all(&mut o, T0, &mut token);
        assert!(
            BatchReader::default()
                .decode(&s[0].2)
                .unwrap()
                .definitions()
                .strings
                .is_empty()
        );
        o.answered(
            s[0].1,
            Reply::Status {
                status: 409,
                retry_after_s: None,
                code: ReplyCode::UnknownDictionary,
            },
            T0,
        );
        let again = send_all(&mut o, T0, &mut token);
        assert_eq!(again[0].0, s[0].0);
        let b = BatchReader::default().decode(&again[0].2).unwrap();
        assert!(!b.definitions().strings.is_empty(), "redefined in full");
        // A fresh collector can read it on its own.
        let mut dict = kong_looker_proto::Dictionary::new(b.generation);
        dict.apply(&b, &kong_looker_proto::Limits::default())
            .unwrap();
        assert_eq!(b.rows(&dict).unwrap().count(), 100);
    }
}
