//! Records read in the log phase and assembled later, in a row, as the
//! filter's stage does, are the records captured one request at a time:
//! over the reference mix as Kong 3.9 presents it, where routes, callers
//! and tokens are met for the first time in the middle of a row.
#![cfg(not(target_arch = "wasm32"))]

use std::borrow::Cow;

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

    let mut in_rows = Vec::new();
    let mut capturers_b = capturers();
    for row in requests.chunks(32) {
        let mut reads = Vec::new();
        for r in row {
            let capturer = &mut capturers_b[r.chain];
            let facts = capturer.request_facts(r.header_map.clone(), now);
            if let Some(read) = capturer.read(Cow::Owned(facts), r, now) {
                reads.push((r.chain, read));
            }
        }
        for (chain, read) in &reads {
            capturers_b[*chain].assemble(read, |record| in_rows.push(text(record)));
        }
    }

    assert!(one_at_a_time.len() > 2_000, "most requests are kept");
    assert_eq!(in_rows.len(), one_at_a_time.len());
    for (i, (a, b)) in one_at_a_time.iter().zip(&in_rows).enumerate() {
        assert_eq!(a, b, "record {i}");
    }
}
