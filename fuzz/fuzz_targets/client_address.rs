//! Any address text in every mode: an address, a network or a hash, never
//! the input itself when hashing.
#![no_main]

use kong_looker_core::capture::privacy::{AddressMode, Pseudonymiser, client_address};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let key = Pseudonymiser::new(b"fuzz-key");
    for mode in [AddressMode::Keep, AddressMode::Truncate, AddressMode::Hash] {
        if let Some(out) = client_address(data, &mode, key.as_ref()) {
            if mode == AddressMode::Hash {
                assert_eq!(out.len(), 26);
                assert!(data.trim().is_empty() || !out.contains(data.trim()));
            }
        }
    }
});
