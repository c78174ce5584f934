//! Any bytes as a log entry's `ai` section, and as the AI response headers
//! a filter reads: a bounded reading, never a panic, whatever they hold.
#![no_main]

use kong_looker_core::capture::ai::{self, AiUsage};
use libfuzzer_sys::fuzz_target;

fn check(u: &AiUsage) {
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
}

fuzz_target!(|data: &[u8]| {
    check(&ai::read_json(data));
    // The headers: the model header, then the cache status after a NUL.
    let (model, cache) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    if let Some(u) = ai::from_headers(Some(model), cache) {
        check(&u);
        assert_eq!((u.calls, u.total_tokens), (0, 0));
    }
});
