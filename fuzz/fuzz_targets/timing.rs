//! Any text as nginx seconds, upstream time lists, statuses, sizes and
//! traceparent headers: a bounded number or nothing.
#![no_main]

use kong_looker_core::capture::timing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(us) = timing::seconds_to_us(&text) {
        assert!(us <= timing::MAX_DURATION_US);
    }
    if let Some(us) = timing::upstream_us(&text) {
        assert!(us <= timing::MAX_DURATION_US);
    }
    if let Some(s) = timing::status(&text) {
        assert!((100..=999).contains(&s));
    }
    let _ = timing::last_upstream_status(&text);
    let _ = timing::size(&text);
    if let Some(id) = timing::trace_id(&text) {
        assert_eq!(id.len(), 32);
    }
});
