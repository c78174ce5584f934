//! Records read in the log phase and assembled later, in a row, as the
//! filter's stage does, are the records captured one request at a time:
//! over the reference mix as Kong 3.9 presents it, where routes, callers
//! and tokens are met for the first time in the middle of a row, and with
//! each row's reads made into the slots the last row's filled.
#![cfg(not(target_arch = "wasm32"))]

use kong_looker_core::capture::capturer::Reads;
use kong_looker_proto::Memo;
use kong_looker_proto::mix::MixParams;
use kong_looker_testsupport::native::{capturers, requests};

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
