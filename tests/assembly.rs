//! Records read in the log phase and assembled later, in a row, as the
//! filter's stage does, are the records captured one request at a time:
//! over the reference mix as Kong 3.9 presents it, where routes, callers
//! and tokens are met for the first time in the middle of a row, and with
//! each row's reads made into the slots the last row's filled; and into a
//! lane's outbox, which knows most callers and endpoints by their key,
//! the batches are byte for byte those of records captured one at a time.
#![cfg(not(target_arch = "wasm32"))]

use kong_looker_core::capture::capturer::{Capturer, Reads, RecordSink};
use kong_looker_core::config::Config;
use kong_looker_core::outbox::{Limits, Outbox};
use kong_looker_proto::builder::Producer;
use kong_looker_proto::mix::MixParams;
use kong_looker_proto::{Memo, Record};
use kong_looker_testsupport::native::{NativeRequest, capturers, requests};
use kong_looker_testsupport::traffic;

/// A record as text, without its memo keys: they stand for values the
/// record also carries, and each capturer draws its own.
fn text(r: &kong_looker_proto::Record<'_>) -> String {
    let mut r = *r;
    r.memo = Memo::default();
    format!("{r:?}")
}

#[test]
fn records_assembled_in_a_row_are_those_captured_one_at_a_time() {
    let requests = requests(
        MixParams {
            request_ids: true,
            ..MixParams::default()
        },
        3_000,
    );
    let now = 1_767_614_400_000;

    let mut one_at_a_time = Vec::new();
    let mut capturers_a = capturers();
    for r in &requests {
        let capturer = &mut capturers_a[r.chain];
        let facts = capturer.request_facts(r.header_map.clone(), now);
        capturer.capture(&facts, r, now, |record| one_at_a_time.push(text(record)));
    }

    // Slots refilled in place, as the stage keeps them. Every other row
    // they are released after assembly, as the stage does; in the others
    // each read must overwrite all that the slot's last request left.
    let mut in_rows = Vec::new();
    let mut capturers_b = capturers();
    let mut slots: Vec<(usize, Reads<'_>)> = Vec::new();
    for (n, row) in requests.chunks(32).enumerate() {
        let mut len = 0;
        for r in row {
            if len == slots.len() {
                slots.push((0, Reads::empty()));
            }
            let (chain, reads) = &mut slots[len];
            let capturer = &mut capturers_b[r.chain];
            capturer.request_facts_into(reads.facts_mut(), r.header_map.clone(), now);
            if capturer.read_into(reads, r, || now) {
                *chain = r.chain;
                len += 1;
            }
        }
        for (chain, reads) in &mut slots[..len] {
            capturers_b[*chain].assemble(reads, |record| in_rows.push(text(record)));
            if n % 2 == 0 {
                reads.release();
            }
        }
    }

    assert!(one_at_a_time.len() > 2_000, "most requests are kept");
    assert_eq!(in_rows.len(), one_at_a_time.len());
    for (i, (a, b)) in one_at_a_time.iter().zip(&in_rows).enumerate() {
        assert_eq!(a, b, "record {i}");
    }
}

/// One lane's outbox, where batches are cut small and the dictionary
/// starts a new generation often, so that callers are forgotten between
/// the question and the push too.
fn lane() -> Outbox {
    let producer = Producer {
        instance_id: [7; 16],
        node_id: "node".into(),
        filter_version: "test".into(),
        kong_version: "3.9.1".into(),
    };
    let limits = Limits {
        max_records: 64,
        max_bytes: 1 << 20,
        flush_interval_ms: 60_000,
        max_in_flight: 1,
        max_retry_age_ms: 60_000,
        max_buffer_bytes: 1 << 30,
        max_dictionary_bytes: 64 * 1024,
        timeout_ms: 1_000,
        spill: true,
    };
    Outbox::new(&producer, limits, 42)
}

/// Every batch the outbox holds, cut at `now`, oldest first.
fn batches(mut outbox: Outbox, now: i64) -> Vec<Vec<u8>> {
    outbox.spill_all(now);
    std::iter::from_fn(|| outbox.take_spilled().map(|b| b.bytes.to_vec())).collect()
}

/// The lane's outbox as the filter's stage hands it records, counting the
/// records that gave their caller by key and those refused for it, and the
/// endpoints and client addresses it knew.
struct Counting<'a> {
    outbox: &'a mut Outbox,
    now: i64,
    taken: usize,
    by_key: usize,
    refused: usize,
    known_endpoints: usize,
    known_clients: usize,
}

impl RecordSink for Counting<'_> {
    fn knows_identity(&mut self, key: u64) -> bool {
        self.outbox.knows_identity(key)
    }

    fn knows_endpoint(&mut self, key: u64) -> bool {
        let known = self.outbox.knows_endpoint(key);
        self.known_endpoints += usize::from(known);
        known
    }

    fn knows_client(&mut self, text: &[u8]) -> Option<u64> {
        let known = self.outbox.knows_client(text);
        self.known_clients += usize::from(known.is_some());
        known
    }

    fn push(&mut self, record: &Record<'_>) -> bool {
        let taken = self.outbox.try_push(record, self.now);
        self.taken += usize::from(taken);
        if record.memo.identity_by_key {
            if taken {
                self.by_key += 1;
            } else {
                self.refused += 1;
            }
        }
        taken
    }
}

/// The reads of `row`, made as the stage makes them, then assembled into
/// `sink` in a row.
fn assemble_row(
    capturers: &mut [Capturer],
    row: &[NativeRequest],
    now: i64,
    sink: &mut Counting<'_>,
) {
    let mut slots = Vec::new();
    for r in row {
        let capturer = &mut capturers[r.chain];
        let mut reads = Reads::empty();
        capturer.request_facts_into(reads.facts_mut(), r.header_map.clone(), now);
        if capturer.read_into(&mut reads, r, || now) {
            slots.push((r.chain, reads));
        }
    }
    for (chain, reads) in &slots {
        capturers[*chain].assemble_into(reads, sink);
    }
}

#[test]
fn callers_by_key_in_a_lane_make_the_batches_that_whole_callers_make() {
    let (known, overflowed) = by_key_in_a_lane(capturers);
    assert_eq!(overflowed, 0);
    // Many records' endpoints were known, so their templates were not
    // looked up in the set of templates (1,266 when written: the lane's
    // dictionary starts again every 40 batches or so).
    assert!(known > 1_000, "{known} endpoints known");
}

/// As above, with a cap of eight templates a chain: most paths are past it
/// and recorded as `{other}`, whose key is not their template's.
#[test]
fn endpoints_by_key_past_the_template_cap_make_the_batches_of_whole_capture() {
    let (known, overflowed) = by_key_in_a_lane(|| {
        traffic::chains("127.0.0.1:9400", r#""paths":{"max_templates":8}"#)
            .iter()
            .enumerate()
            .map(|(i, c)| Capturer::new(Config::parse(c.as_bytes()).unwrap(), i as u64))
            .collect()
    });
    assert!(overflowed > 1_000, "{overflowed} paths past the cap");
    // 692 when written: only a template within the cap can be known.
    assert!(known > 400, "{known} endpoints known");
}

/// The reference mix captured one at a time with whole callers, and in
/// rows into a lane's outbox that knows callers and endpoints by key: the
/// same batches, byte for byte, and the same paths past the template cap
/// (client addresses the lane knows go by its hash, unparsed).
/// Returns how many endpoints the lane knew, and how many paths were past
/// the cap.
fn by_key_in_a_lane(capturers: impl Fn() -> Vec<Capturer>) -> (usize, u64) {
    let requests = requests(MixParams::default(), 6_000);
    // Each row a day after the last: its first record cannot join the open
    // batch, which is cut in the push, between the question and the
    // record, and a cut can start a new generation there.
    let start = 1_767_614_400_000;
    let day = kong_looker_proto::limits::MAX_RECORD_SPREAD_MS + 1;
    let row_time = |row: usize| start + row as i64 * day;

    let mut whole = lane();
    let mut capturers_a = capturers();
    for (i, r) in requests.iter().enumerate() {
        let now = row_time(i / 32);
        let capturer = &mut capturers_a[r.chain];
        let facts = capturer.request_facts(r.header_map.clone(), now);
        capturer.capture(&facts, r, now, |record| whole.push(record, now));
    }

    let mut by_key = lane();
    let mut capturers_b = capturers();
    let mut sink = Counting {
        outbox: &mut by_key,
        now: start,
        taken: 0,
        by_key: 0,
        refused: 0,
        known_endpoints: 0,
        known_clients: 0,
    };
    for (n, row) in requests.chunks(32).enumerate() {
        sink.now = row_time(n);
        assemble_row(&mut capturers_b, row, sink.now, &mut sink);
    }
    let (taken, went_by_key, refused) = (sink.taken, sink.by_key, sink.refused);
    let known = sink.known_endpoints;
    // Addresses the lane's builder remembered go unparsed, by its hash.
    let known_clients = sink.known_clients;
    assert!(
        known_clients > 1_000,
        "{known_clients} client addresses known"
    );

    assert!(taken > 4_000, "{taken} records");
    // A generation lasts some 40 batches of 64 here, and forgets them all
    // (2,514 of 6,000 by key when written).
    assert!(3 * went_by_key > taken, "{went_by_key} of {taken} by key");
    assert!(refused > 0, "a new generation forgot a key in between");
    assert_eq!(whole.stats().counters(), by_key.stats().counters());
    let end = row_time(requests.len() / 32 + 1);
    let (a, b) = (batches(whole, end), batches(by_key, end));
    assert!(a.len() > 50, "{} batches", a.len());
    assert_eq!(a.len(), b.len());
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        assert!(a == b, "batch {i} differs");
    }
    let overflowed = |c: &[Capturer]| c.iter().map(Capturer::paths_overflowed).sum::<u64>();
    assert_eq!(overflowed(&capturers_a), overflowed(&capturers_b));
    (known, overflowed(&capturers_a))
}
