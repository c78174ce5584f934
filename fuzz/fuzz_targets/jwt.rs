//! Any bearer value: claims or an error; the signature never comes out.
#![no_main]

use kong_looker_core::capture::jwt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let token = jwt::bearer(data).unwrap_or(data);
    if let Ok(c) = jwt::claims(token, "groups") {
        assert!(c.groups.len() <= jwt::MAX_GROUPS);
        if let Some(sig) = token.rsplit('.').next().filter(|s| s.len() > 8) {
            for v in [&c.subject, &c.issuer, &c.client_id].into_iter().flatten() {
                assert!(!v.contains(sig), "signature leaked");
            }
        }
    }
});
