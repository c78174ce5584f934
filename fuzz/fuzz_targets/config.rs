//! Any bytes as the filter's config: refused with a named field, or a
//! config whose every bound holds.
#![no_main]

use kong_looker_core::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Config::parse(data) {
        Ok(c) => {
            assert!((1..=100_000).contains(&c.batch.max_records));
            assert!(c.sample_rate > 0.0 && c.sample_rate <= 1.0);
            assert!(c.max_buffer_bytes >= c.batch.max_bytes);
        }
        Err(e) => assert!(!e.field.is_empty() && !e.reason.is_empty()),
    }
});
