//! Any bytes as Kong's router JSON: an entity or nothing, bounded.
#![no_main]

use kong_looker_core::capture::router;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(e) = router::entity(data) {
        for f in [&e.id, &e.name].into_iter().flatten() {
            assert!(f.len() <= router::MAX_FIELD_BYTES);
        }
    }
});
