//! Two batches from one producer, the second resolved against what the
//! first defined: exercises redefinitions, gaps and conflicts in the
//! session dictionary, and rollback after a refused batch.
#![no_main]

use kong_looker_proto::{BatchReader, Dictionary};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], &[u8])| {
    let reader = BatchReader::default();
    let mut dict = Dictionary::new(0);
    for bytes in [input.0, input.1] {
        let Ok(batch) = reader.decode(bytes) else {
            continue;
        };
        let before = dict.clone();
        if dict.apply(&batch, reader.limits()).is_err() {
            assert_eq!(dict, before, "a refused batch changed the dictionary");
            continue;
        }
        if let Ok(rows) = batch.rows(&dict) {
            std::hint::black_box(rows.count());
        }
    }
});
