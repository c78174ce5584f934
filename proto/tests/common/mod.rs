//! Helpers shared by the codec's integration tests.
#![allow(dead_code)]

use kong_looker_proto::coding::{MAX_DURATION_US, MAX_SIZE_BYTES};
use kong_looker_proto::limits::{MAX_GROUPS, MAX_ID_BYTES, MAX_STRING_BYTES};
use kong_looker_proto::row::{
    agent_category_name, auth_method_name, method_name, source_name, trust_name,
};
use kong_looker_proto::v1::{self, Method};
use kong_looker_proto::{Record, Row};

pub const INSTANCE: [u8; 16] = *b"kong-looker-test";

pub fn producer() -> kong_looker_proto::builder::Producer {
    kong_looker_proto::builder::Producer {
        instance_id: INSTANCE,
        node_id: "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa".into(),
        filter_version: "0.1.0".into(),
        kong_version: "3.9.1".into(),
    }
}

fn opt(s: &str) -> Option<&str> {
    let s = &s[..s.floor_char_boundary(MAX_STRING_BYTES)];
    (!s.is_empty()).then_some(s)
}

/// Asserts that a decoded row carries exactly what the record said, after
/// the builder's documented clamping and truncation.
pub fn assert_row_matches(row: &Row<'_>, r: &Record<'_>, at: usize) {
    let ctx = format!("record {at}");
    assert_eq!(row.started_at_ms, r.started_at_ms, "{ctx}: start");
    assert_eq!(row.route_id, opt(r.route.route_id), "{ctx}: route_id");
    assert_eq!(row.route_name, opt(r.route.route_name), "{ctx}: route_name");
    assert_eq!(row.service_id, opt(r.route.service_id), "{ctx}: service_id");
    assert_eq!(
        row.service_name,
        opt(r.route.service_name),
        "{ctx}: service_name"
    );
    assert_eq!(row.workspace, opt(r.route.workspace), "{ctx}: workspace");
    let method = match r.method {
        Method::Other => opt(r.method_text),
        m => method_name(m),
    };
    assert_eq!(row.method, method, "{ctx}: method");
    assert_eq!(row.host, opt(r.host), "{ctx}: host");
    assert_eq!(row.path, opt(r.path), "{ctx}: path");
    let status = (100..=999).contains(&r.status).then_some(r.status);
    assert_eq!(row.status, status, "{ctx}: status");
    assert_eq!(row.response_source, source_name(r.source), "{ctx}: source");
    let total = r.latency_total_us.min(MAX_DURATION_US);
    assert_eq!(row.latency_total_us, total, "{ctx}: total latency");
    assert_eq!(
        row.latency_upstream_us,
        r.latency_upstream_us.map(|u| u.min(MAX_DURATION_US)),
        "{ctx}: upstream latency"
    );
    assert_eq!(
        row.request_bytes,
        r.request_bytes.min(MAX_SIZE_BYTES),
        "{ctx}: request bytes"
    );
    assert_eq!(
        row.response_bytes,
        r.response_bytes.min(MAX_SIZE_BYTES),
        "{ctx}: response bytes"
    );
    match &r.identity {
        None => {
            assert_eq!(row.auth_method, None, "{ctx}: auth");
            assert_eq!(row.consumer_id, None, "{ctx}: consumer");
        }
        Some(id) => {
            assert_eq!(
                row.auth_method,
                auth_method_name(id.auth_method),
                "{ctx}: auth"
            );
            assert_eq!(row.trust, trust_name(id.trust), "{ctx}: trust");
            assert_eq!(row.anonymous, id.anonymous, "{ctx}: anonymous");
            assert_eq!(row.consumer_id, opt(id.consumer_id), "{ctx}: consumer_id");
            assert_eq!(
                row.consumer_username,
                opt(id.consumer_username),
                "{ctx}: username"
            );
            assert_eq!(
                row.consumer_custom_id,
                opt(id.consumer_custom_id),
                "{ctx}: custom id"
            );
            assert_eq!(row.credential, opt(id.credential), "{ctx}: credential");
            let groups: Vec<&str> = id
                .consumer_groups
                .iter()
                .copied()
                .filter_map(opt)
                .take(MAX_GROUPS)
                .collect();
            assert_eq!(
                row.consumer_groups.iter().collect::<Vec<_>>(),
                groups,
                "{ctx}: groups"
            );
            assert_eq!(row.subject, opt(id.subject), "{ctx}: subject");
            assert_eq!(row.issuer, opt(id.issuer), "{ctx}: issuer");
            assert_eq!(row.client_id, opt(id.client_id), "{ctx}: client id");
        }
    }
    assert_eq!(
        row.client_address,
        opt(r.client_address),
        "{ctx}: client address"
    );
    assert_eq!(
        row.agent_category,
        r.agent.map(|a| agent_category_name(a.category)),
        "{ctx}: agent"
    );
    assert_eq!(
        row.agent_name,
        r.agent.and_then(|a| opt(a.name)),
        "{ctx}: agent name"
    );
    let id = |s: &str| (!s.is_empty() && s.len() <= MAX_ID_BYTES).then(|| s.to_owned());
    assert_eq!(
        row.request_id.map(|i| i.to_string()),
        id(r.request_id),
        "{ctx}: request id"
    );
    assert_eq!(
        row.trace_id.map(|i| i.to_string()),
        id(r.trace_id),
        "{ctx}: trace id"
    );
    let w = r.sample_weight;
    let weight = if w.is_finite() && (1.0..=1e6).contains(&w) {
        w
    } else {
        1.0
    };
    assert_eq!(row.sample_weight, weight, "{ctx}: weight");
    assert_ai_matches(row, r, &ctx);
}

/// The AI columns: absent without figures, else clamped to the schema's
/// bounds.
fn assert_ai_matches(row: &Row<'_>, r: &Record<'_>, ctx: &str) {
    use kong_looker_proto::limits::{
        MAX_AI_COST_MICROS, MAX_AI_COUNT, MAX_AI_LATENCY_MS, MAX_AI_TOKENS,
    };
    let Some(ai) = r.ai else {
        assert_eq!(row.ai_total_tokens, None, "{ctx}: ai");
        assert_eq!(row.ai_provider, None, "{ctx}: ai provider");
        assert_eq!(row.ai_calls, None, "{ctx}: ai calls");
        return;
    };
    let tokens = |t: u64| Some(t.min(MAX_AI_TOKENS));
    let ms = |v: Option<u64>| v.map(|m| m.min(MAX_AI_LATENCY_MS));
    let count = |c: u32| Some(c.min(MAX_AI_COUNT));
    let names = [
        (row.ai_provider, ai.provider),
        (row.ai_request_model, ai.request_model),
        (row.ai_response_model, ai.response_model),
        (row.ai_request_mode, ai.request_mode),
        (row.ai_cache_status, ai.cache_status),
        (row.ai_embeddings_model, ai.embeddings_model),
        (row.ai_guardrail, ai.guardrail),
        (row.ai_mcp_tool, ai.mcp_tool),
    ];
    for (i, (got, want)) in names.into_iter().enumerate() {
        assert_eq!(got, opt(want), "{ctx}: ai name {i}");
    }
    assert_eq!(
        row.ai_prompt_tokens,
        tokens(ai.prompt_tokens),
        "{ctx}: prompt"
    );
    assert_eq!(
        row.ai_completion_tokens,
        tokens(ai.completion_tokens),
        "{ctx}: completion"
    );
    assert_eq!(row.ai_total_tokens, tokens(ai.total_tokens), "{ctx}: total");
    assert_eq!(
        row.ai_cost_micros,
        Some(ai.cost_micros.min(MAX_AI_COST_MICROS)),
        "{ctx}: cost"
    );
    assert_eq!(row.ai_llm_latency_ms, ms(ai.llm_latency_ms), "{ctx}: llm");
    assert_eq!(
        row.ai_time_to_first_token_ms,
        ms(ai.time_to_first_token_ms),
        "{ctx}: ttft"
    );
    assert_eq!(
        row.ai_cache_fetch_latency_ms,
        ms(ai.cache_fetch_latency_ms),
        "{ctx}: cache fetch"
    );
    assert_eq!(
        row.ai_guardrail_blocks,
        count(ai.guardrail_blocks),
        "{ctx}: blocks"
    );
    assert_eq!(
        row.ai_mcp_tool_calls,
        count(ai.mcp_tool_calls),
        "{ctx}: mcp"
    );
    assert_eq!(row.ai_calls, count(ai.calls), "{ctx}: calls");
    assert_eq!(row.ai_unreadable, count(ai.unreadable), "{ctx}: unreadable");
}

pub fn no_drops() -> v1::Drops {
    v1::Drops::default()
}
