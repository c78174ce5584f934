//! Any bytes through the whole read path: decode, apply to a fresh
//! dictionary, check references, and produce every row. Nothing may panic,
//! and rows are only produced when every check passed.
#![no_main]

use kong_looker_proto::{BatchReader, Dictionary, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reader = BatchReader::new(Limits {
        now_ms: Some(1_767_614_460_000),
        ..Limits::default()
    });
    let Ok(batch) = reader.decode(data) else {
        return;
    };
    let mut dict = Dictionary::new(batch.generation);
    if dict.apply(&batch, reader.limits()).is_err() {
        return;
    }
    if let Ok(rows) = batch.rows(&dict) {
        for row in rows {
            std::hint::black_box(row.consumer_groups.iter().count());
            std::hint::black_box(row.request_id.map(|id| id.to_string()));
        }
    }
});
