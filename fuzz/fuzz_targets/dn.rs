//! Any subject DN: a common name or nothing, bounded.
#![no_main]

use kong_looker_core::capture::dn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Some(cn) = dn::common_name(data) {
        assert!(cn.len() <= dn::MAX_DN_BYTES);
    }
});
