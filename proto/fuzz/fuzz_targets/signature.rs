//! Any Authorization value and body through signature verification: an
//! error or, only for the right key and body, acceptance; never a panic.
#![no_main]

use kong_looker_proto::signing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = data.split_at(data.len() / 2);
    let header = String::from_utf8_lossy(header);
    let verdict = signing::verify(
        b"fuzzing-key-0123456789",
        Some(&header),
        body,
        1_764_000_000,
        300,
    );
    if verdict.is_ok() {
        // Only a header the key produced can pass.
        let t: i64 = header
            .split("t=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|t| t.trim().parse().ok())
            .unwrap();
        assert_eq!(
            header.trim(),
            signing::authorization(b"fuzzing-key-0123456789", t, body)
        );
    }
});
