//! Any bytes as a log entry's `ai` section: a bounded reading, never a
//! panic, whatever the JSON holds.
#![no_main]

use kong_looker_core::capture::ai;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let u = ai::read_json(data);
    for name in [
        &u.provider,
        &u.request_model,
        &u.response_model,
        &u.request_mode,
        &u.cache_status,
        &u.embeddings_model,
        &u.guardrail,
        &u.mcp_tool,
    ] {
        assert!(name.len() <= ai::MAX_NAME_BYTES);
    }
    assert!(u.prompt_tokens <= ai::MAX_TOKENS && u.completion_tokens <= ai::MAX_TOKENS);
    assert!(u.total_tokens <= ai::MAX_TOKENS && u.cost_micros <= ai::MAX_COST_MICROS);
});
