//! Any bytes as the host's serialized header map: pairs that lie inside
//! the input, never more than the bound.
#![no_main]

use kong_looker_core::capture::headers;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut n = 0;
    for (name, value) in headers::pairs(data) {
        assert!(name.len() + value.len() <= data.len());
        n += 1;
    }
    assert!(n <= headers::MAX_PAIRS);
});
