//! Any path: a template comes out, bounded, without the query string.
#![no_main]

use kong_looker_core::capture::path::{MAX_PATH_BYTES, PathTemplater, PrefixRule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let rules = vec![PrefixRule {
        prefix: "/v1/users/".into(),
        template: "/v1/users/{user}".into(),
    }];
    let mut t = PathTemplater::new(rules, 64, 0x5eed);
    let out = t.template(data);
    assert!(!out.contains('?'), "query leaked: {out}");
    assert!(out.len() <= MAX_PATH_BYTES + 64);
});
