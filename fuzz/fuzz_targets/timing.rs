//! Any bytes as nginx seconds, upstream time lists, statuses, sizes and
//! traceparent headers: a bounded number or nothing.
#![no_main]

use kong_looker_core::capture::timing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(us) = timing::seconds_to_us(data) {
        assert!(us <= timing::MAX_DURATION_US);
    }
    if let Some(us) = timing::upstream_us(data) {
        assert!(us <= timing::MAX_DURATION_US);
    }
    if let Some(s) = timing::status(data) {
        assert!((100..=999).contains(&s));
    }
    let _ = timing::last_upstream_status(data);
    let _ = timing::size(data);
    if let Some(id) = timing::trace_id(data) {
        assert_eq!(id.len(), 32);
    }
});
