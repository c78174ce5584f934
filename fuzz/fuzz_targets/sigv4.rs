//! Any Authorization value: SigV4 fields or nothing; never the signature.
#![no_main]

use kong_looker_core::capture::sigv4;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Some(s) = sigv4::parse(data) {
        for field in [s.access_key, s.region, s.service] {
            assert!(!field.is_empty() && !field.contains('/') && !field.contains(','));
        }
    }
});
