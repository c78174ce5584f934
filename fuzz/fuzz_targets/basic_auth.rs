//! Any Authorization value: a user name or nothing, never the password.
#![no_main]

use kong_looker_core::capture::basic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Some(user) = basic::username(data) {
        assert!(!user.contains(':'), "the password would follow a colon");
        assert!(user.len() <= basic::MAX_USER_BYTES);
    }
});
