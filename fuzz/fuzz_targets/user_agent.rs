//! Any User-Agent: a rule or nothing, never a panic.
#![no_main]

use kong_looker_core::capture::agent::AgentClassifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let mut c = AgentClassifier::new(0x5eed);
    let first = c.classify(data).map(|r| r.name.clone());
    assert_eq!(
        first,
        c.classify(data).map(|r| r.name.clone()),
        "the cache agrees"
    );
});
