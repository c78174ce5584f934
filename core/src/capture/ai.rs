//! Kong's AI Gateway figures in a serialized log entry: the `ai` section
//! that ai-proxy, ai-proxy-advanced, the AI transformers, semantic cache,
//! guardrails and MCP plugins write (`docs/kong_ai_log_fields.md` has the
//! fields, their units and the Kong version of each), read into one
//! [`AiUsage`] per request.
//!
//! How several AI plugins on one request add up (the rule Kong's own
//! Prometheus exporter follows):
//! - Kong 3.6 keeps one flat `ai.usage`, already the sum: it is read as is.
//! - From 3.7, each top-level key of `ai` with a `usage` object is a
//!   separate LLM call (`proxy` or `ai-proxy`, `ai-request-transformer`,
//!   `ai-response-transformer`, ...): their tokens and costs are added.
//! - Objects nested in an entry (`cache`, guardrails) are never added, and
//!   the keys without usage (`payload`, `audit`, `mcp`, ...) neither.
//! - A semantic-cache hit keeps the tokens and cost Kong reports, with its
//!   status: whether a hit spent them is the reader's choice (Looker's
//!   "billed" measures leave hits out).
//!
//! Names, provider and latency come from the proxied call: `proxy`,
//! `ai-proxy` or `ai-proxy-advanced`, else the first entry with a `meta`.
//! What cannot be read (a wrong type, a negative count, a cost that is not
//! a finite number, a string past its bound) is counted in
//! [`AiUsage::unreadable`]; everything else still lands.

use kong_looker_proto::AiRef;
use kong_looker_proto::limits::{MAX_AI_COST_MICROS, MAX_AI_LATENCY_MS, MAX_AI_TOKENS};
use serde_json::{Map, Value};

use super::cut;

/// Longest provider, model, status or tool name kept, bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most top-level keys of `ai`, and most MCP calls, looked at.
const MAX_ENTRIES: usize = 64;
/// Most MCP JSON-RPC messages looked at.
const MAX_RPC: usize = 1024;
/// Upper bound on a token count (the wire schema's).
pub const MAX_TOKENS: u64 = MAX_AI_TOKENS;
/// Upper bound on a cost, in millionths (the wire schema's).
pub const MAX_COST_MICROS: u64 = MAX_AI_COST_MICROS;
/// Upper bound on a latency, ms (the wire schema's).
pub const MAX_LATENCY_MS: u64 = MAX_AI_LATENCY_MS;

/// The keys of `ai` that never carry a call's usage.
const NOT_CALLS: [&str; 6] = ["payload", "audit", "sanitizer", "compressor", "mcp", "a2a"];
/// The keys of the proxied call's entry, most preferred first.
const PROXY_KEYS: [&str; 3] = ["proxy", "ai-proxy", "ai-proxy-advanced"];
/// Keys inside an entry that are Kong's own, not a guardrail's.
const ENTRY_FIELDS: [&str; 6] = [
    "meta",
    "usage",
    "cache",
    "payload",
    "tried_targets",
    "rag-inject",
];

/// What one request's `ai` section adds up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AiUsage {
    /// The proxied call's `meta.provider_name` (`openai`, `bedrock`, ...).
    pub provider: String,
    /// `meta.request_model`: the model asked for or configured.
    pub request_model: String,
    /// `meta.response_model`: the model that answered.
    pub response_model: String,
    /// `meta.request_mode` (3.12+): `oneshot`, `stream` or `realtime`.
    pub request_mode: String,
    /// Prompt tokens over every call (`input_tokens` where a call has no
    /// prompt tokens).
    pub prompt_tokens: u64,
    /// Completion tokens over every call (`output_tokens` likewise).
    pub completion_tokens: u64,
    /// Total tokens over every call; prompt plus completion where a call
    /// gives no total.
    pub total_tokens: u64,
    /// Kong's cost estimate over every call, in millionths of the unit of
    /// the prices configured on the plugin (prices per million tokens;
    /// micro-USD when they are in dollars). Kong writes 0, or nothing,
    /// when no prices are configured.
    pub cost_micros: u64,
    /// The proxied call's `meta.llm_latency`, ms.
    pub llm_latency_ms: Option<u64>,
    /// The proxied call's `usage.time_to_first_token` (3.12+), ms.
    pub time_to_first_token_ms: Option<u64>,
    /// The proxied call's `cache.cache_status`, lowercase: `hit`, `miss`,
    /// `bypass` or `refresh`.
    pub cache_status: String,
    /// The proxied call's `cache.fetch_latency`, ms.
    pub cache_fetch_latency_ms: Option<u64>,
    /// `cache.embeddings_model` of a semantic match.
    pub embeddings_model: String,
    /// Guardrail results with a block reason, input or output.
    pub guardrail_blocks: u32,
    /// The first guardrail that blocked, by its key (`aws-guardrails`,
    /// `lakera-guard`, ...).
    pub guardrail: String,
    /// MCP `tools/call` messages in `ai.mcp.rpc`.
    pub mcp_tool_calls: u32,
    /// The first tool called.
    pub mcp_tool: String,
    /// Calls whose usage was added.
    pub calls: u32,
    /// Values not kept whole: wrong types, negative or non-finite numbers,
    /// numbers past their bound, names past [`MAX_NAME_BYTES`].
    pub unreadable: u32,
}

impl AiUsage {
    /// The figures as the builder takes them.
    pub fn as_record(&self) -> AiRef<'_> {
        AiRef {
            provider: &self.provider,
            request_model: &self.request_model,
            response_model: &self.response_model,
            request_mode: &self.request_mode,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.total_tokens,
            cost_micros: self.cost_micros,
            llm_latency_ms: self.llm_latency_ms,
            time_to_first_token_ms: self.time_to_first_token_ms,
            cache_fetch_latency_ms: self.cache_fetch_latency_ms,
            cache_status: &self.cache_status,
            embeddings_model: &self.embeddings_model,
            guardrail_blocks: self.guardrail_blocks,
            guardrail: &self.guardrail,
            mcp_tool_calls: self.mcp_tool_calls,
            mcp_tool: &self.mcp_tool,
            calls: self.calls,
            unreadable: self.unreadable,
        }
    }

    /// True when the section held nothing this reads.
    pub fn is_empty(&self) -> bool {
        *self
            == AiUsage {
                unreadable: self.unreadable,
                ..AiUsage::default()
            }
    }
}

/// What a proxy-wasm filter can see of an AI Gateway call: ai-proxy's
/// `X-Kong-LLM-Model` response header (`<provider>/<model>`, Kong 3.8+,
/// on 200s from the provider) and the semantic cache's `X-Cache-Status`.
/// Kong puts no tokens, cost or guardrail verdict in a header, so those
/// stay 0 and `calls` stays 0: a row with added usage (from the plugin
/// server or http-log) is preferred over this one. `X-Cache-Status` alone
/// is not read, because proxy-cache sends it too. `None` without the model
/// header.
pub fn from_headers(model: Option<&[u8]>, cache_status: Option<&[u8]>) -> Option<AiUsage> {
    let mut out = AiUsage::default();
    let model = model?;
    let Ok(model) = core::str::from_utf8(model) else {
        out.unreadable = 1;
        return Some(out);
    };
    let model = model.trim();
    let (provider, name) = model.split_once('/').unwrap_or(("", model));
    out.provider = bounded(provider, &mut out.unreadable);
    out.request_model = bounded(name, &mut out.unreadable);
    if let Some(status) = cache_status {
        match core::str::from_utf8(status).map(str::trim) {
            Ok(s)
                if ["hit", "miss", "bypass", "refresh"]
                    .iter()
                    .any(|k| s.eq_ignore_ascii_case(k)) =>
            {
                out.cache_status = s.to_ascii_lowercase();
            }
            _ => out.unreadable = out.unreadable.saturating_add(1),
        }
    }
    Some(out)
}

/// Reads an `ai` section given as JSON text.
pub fn read_json(text: &[u8]) -> AiUsage {
    match serde_json::from_slice::<Value>(text) {
        Ok(v) => read(&v),
        Err(_) => AiUsage {
            unreadable: 1,
            ..AiUsage::default()
        },
    }
}

/// Reads an `ai` section: the value of the log entry's `ai` key.
pub fn read(ai: &Value) -> AiUsage {
    let mut out = AiUsage::default();
    let Some(ai) = ai.as_object() else {
        out.unreadable = 1;
        return out;
    };
    // Kong 3.6: one flat section, already summed.
    if ai.get("usage").is_some_and(Value::is_object) {
        add_usage(&mut out, ai);
        take_meta(&mut out, ai);
        return out;
    }
    let mut proxy: Option<&Map<String, Value>> = None;
    let mut first_meta: Option<&Map<String, Value>> = None;
    for (key, value) in ai.iter().take(MAX_ENTRIES) {
        if key == "mcp" {
            read_mcp(&mut out, value);
            continue;
        }
        if NOT_CALLS.contains(&key.as_str()) {
            continue;
        }
        let Some(entry) = value.as_object() else {
            out.unreadable = out.unreadable.saturating_add(1);
            continue;
        };
        if entry.get("usage").is_some_and(Value::is_object) {
            add_usage(&mut out, entry);
        }
        if PROXY_KEYS.contains(&key.as_str()) && proxy.is_none() {
            proxy = Some(entry);
        }
        if first_meta.is_none() && entry.get("meta").is_some_and(Value::is_object) {
            first_meta = Some(entry);
        }
    }
    if let Some(entry) = proxy.or(first_meta) {
        take_meta(&mut out, entry);
    }
    out
}

/// Adds one call's `usage`.
fn add_usage(out: &mut AiUsage, entry: &Map<String, Value>) {
    let Some(usage) = entry.get("usage").and_then(Value::as_object) else {
        return;
    };
    out.calls = out.calls.saturating_add(1);
    let mut count = |names: &[&str]| -> Option<u64> {
        let value = names.iter().find_map(|n| usage.get(*n))?;
        whole(value, MAX_TOKENS, &mut out.unreadable)
    };
    let prompt = count(&["prompt_tokens", "prompt_token", "input_tokens"]);
    let completion = count(&["completion_tokens", "completion_token", "output_tokens"]);
    let total = count(&["total_tokens"]);
    let cost = usage
        .get("cost")
        .and_then(|v| micros(v, &mut out.unreadable));
    let (p, c) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    out.prompt_tokens = out.prompt_tokens.saturating_add(p).min(MAX_TOKENS);
    out.completion_tokens = out.completion_tokens.saturating_add(c).min(MAX_TOKENS);
    let total = total.unwrap_or_else(|| p.saturating_add(c));
    out.total_tokens = out.total_tokens.saturating_add(total).min(MAX_TOKENS);
    out.cost_micros = out
        .cost_micros
        .saturating_add(cost.unwrap_or(0))
        .min(MAX_COST_MICROS);
}

/// Names, latencies, cache and guardrails of the proxied call.
fn take_meta(out: &mut AiUsage, entry: &Map<String, Value>) {
    let unreadable = &mut out.unreadable;
    if let Some(meta) = entry.get("meta").and_then(Value::as_object) {
        out.provider = name(meta.get("provider_name"), unreadable);
        out.request_model = name(meta.get("request_model"), unreadable);
        out.response_model = name(meta.get("response_model"), unreadable);
        out.request_mode = name(meta.get("request_mode"), unreadable);
        out.llm_latency_ms = meta
            .get("llm_latency")
            .and_then(|v| whole(v, MAX_LATENCY_MS, unreadable));
    }
    if let Some(usage) = entry.get("usage").and_then(Value::as_object) {
        out.time_to_first_token_ms = usage
            .get("time_to_first_token")
            .and_then(|v| whole(v, MAX_LATENCY_MS, unreadable));
    }
    if let Some(cache) = entry.get("cache").and_then(Value::as_object) {
        let mut status = name(cache.get("cache_status"), unreadable);
        status.make_ascii_lowercase();
        out.cache_status = status;
        out.cache_fetch_latency_ms = cache
            .get("fetch_latency")
            .and_then(|v| whole(v, MAX_LATENCY_MS, unreadable));
        out.embeddings_model = name(cache.get("embeddings_model"), unreadable);
    }
    for (key, value) in entry.iter().take(MAX_ENTRIES) {
        if ENTRY_FIELDS.contains(&key.as_str()) {
            continue;
        }
        let Some(guard) = value.as_object() else {
            continue;
        };
        let blocked = ["input_block_reason", "output_block_reason"]
            .iter()
            .filter(|k| {
                guard
                    .get(**k)
                    .and_then(Value::as_str)
                    .is_some_and(|r| !r.is_empty())
            })
            .count();
        if blocked > 0 {
            out.guardrail_blocks = out
                .guardrail_blocks
                .saturating_add(u32::try_from(blocked).unwrap_or(u32::MAX));
            if out.guardrail.is_empty() {
                out.guardrail = bounded(key, unreadable);
            }
        }
    }
}

/// `ai.mcp`: its tool calls.
fn read_mcp(out: &mut AiUsage, mcp: &Value) {
    let Some(rpc) = mcp.get("rpc").and_then(Value::as_array) else {
        if !mcp.is_object() {
            out.unreadable = out.unreadable.saturating_add(1);
        }
        return;
    };
    for call in rpc.iter().take(MAX_RPC) {
        if call.get("method").and_then(Value::as_str) != Some("tools/call") {
            continue;
        }
        out.mcp_tool_calls = out.mcp_tool_calls.saturating_add(1);
        if out.mcp_tool.is_empty() {
            out.mcp_tool = name(call.get("tool_name"), &mut out.unreadable);
        }
    }
}

/// A non-negative whole number up to `max`; a fraction is cut (Kong 3.8
/// wrote some figures as floats). Anything else is counted.
fn whole(v: &Value, max: u64, unreadable: &mut u32) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f <= max as f64)
                // In range, so the cast only drops the fraction.
                .map(|f| f as u64)
        }),
        _ => None,
    };
    match n {
        Some(n) if n <= max => Some(n),
        _ => {
            *unreadable = unreadable.saturating_add(1);
            None
        }
    }
}

/// A cost in millionths, rounded; counted when not a finite non-negative
/// number or past [`MAX_COST_MICROS`].
fn micros(v: &Value, unreadable: &mut u32) -> Option<u64> {
    let f = v.as_f64().filter(|f| f.is_finite() && *f >= 0.0);
    match f.map(|f| (f * 1e6).round()) {
        Some(m) if m <= MAX_COST_MICROS as f64 => Some(m as u64),
        _ => {
            *unreadable = unreadable.saturating_add(1);
            None
        }
    }
}

/// A name: a string cut to [`MAX_NAME_BYTES`]; empty when absent. A cut
/// or a value that is not a string is counted.
fn name(v: Option<&Value>, unreadable: &mut u32) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => bounded(s, unreadable),
        Some(_) => {
            *unreadable = unreadable.saturating_add(1);
            String::new()
        }
    }
}

fn bounded(s: &str, unreadable: &mut u32) -> String {
    if s.len() > MAX_NAME_BYTES {
        *unreadable = unreadable.saturating_add(1);
    }
    cut(s, MAX_NAME_BYTES).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headers_give_provider_model_and_cache_status() {
        let u = from_headers(Some(b"openai/gpt-4o"), Some(b"Hit")).unwrap();
        assert_eq!(
            (
                u.provider.as_str(),
                u.request_model.as_str(),
                u.cache_status.as_str()
            ),
            ("openai", "gpt-4o", "hit")
        );
        assert_eq!((u.calls, u.total_tokens, u.unreadable), (0, 0, 0));
        // A model with a slash of its own keeps it.
        let u = from_headers(Some(b"bedrock/meta/llama3"), None).unwrap();
        assert_eq!(
            (u.provider.as_str(), u.request_model.as_str()),
            ("bedrock", "meta/llama3")
        );
        let u = from_headers(Some(b"gpt-4o"), Some(b"HIT-ish")).unwrap();
        assert_eq!(
            (u.provider.as_str(), u.request_model.as_str()),
            ("", "gpt-4o")
        );
        assert_eq!((u.cache_status.as_str(), u.unreadable), ("", 1));
        assert_eq!(
            from_headers(None, Some(b"Hit")),
            None,
            "proxy-cache's header alone"
        );
        assert_eq!(
            from_headers(Some(&[0xff, 0xfe]), None).unwrap().unreadable,
            1
        );
        let long = format!("openai/{}", "m".repeat(1000));
        let u = from_headers(Some(long.as_bytes()), None).unwrap();
        assert_eq!((u.request_model.len(), u.unreadable), (MAX_NAME_BYTES, 1));
    }
    use serde_json::json;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn a_chat_completion_on_kong_3_9_and_later() {
        let ai = json!({"proxy": {
            "meta": {"plugin_id": "6e7c40f6-0000-4000-8000-000000000001", "provider_name": "openai",
                     "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06",
                     "llm_latency": 1432, "request_mode": "oneshot"},
            "usage": {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37,
                      "time_per_token": 119.33, "cost": 0.00037, "time_to_first_token": 610},
            "payload": {"request": "{}", "response": "{}"}}});
        let u = read(&ai);
        assert_eq!(
            u,
            AiUsage {
                provider: "openai".into(),
                request_model: "gpt-4o".into(),
                response_model: "gpt-4o-2024-08-06".into(),
                request_mode: "oneshot".into(),
                prompt_tokens: 25,
                completion_tokens: 12,
                total_tokens: 37,
                cost_micros: 370,
                llm_latency_ms: Some(1432),
                time_to_first_token_ms: Some(610),
                calls: 1,
                ..AiUsage::default()
            }
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_layout_kong_has_used() {
        // 3.6: flat and already summed.
        let v36 = read(
            &json!({"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
                               "meta": {"provider_name": "mistral", "request_model": "m"}}),
        );
        assert_eq!(
            (v36.total_tokens, v36.provider.as_str(), v36.calls),
            (7, "mistral", 1)
        );
        // 3.7: per plugin, singular names, no cost.
        let v37 = read(
            &json!({"ai-proxy": {"usage": {"prompt_token": 5, "completion_token": 6, "total_tokens": 11},
                                            "meta": {"provider_name": "azure"}}}),
        );
        assert_eq!(
            (v37.prompt_tokens, v37.completion_tokens, v37.cost_micros),
            (5, 6, 0)
        );
        // 3.11+: non-text modalities count input and output tokens.
        let v311 = read(&json!({"proxy": {"usage": {"input_tokens": 100, "output_tokens": 1}}}));
        assert_eq!(
            (
                v311.prompt_tokens,
                v311.completion_tokens,
                v311.total_tokens
            ),
            (100, 1, 101)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn calls_of_several_plugins_add_up_and_nested_objects_do_not() {
        let u = read(&json!({
            "ai-request-transformer": {"meta": {"provider_name": "cohere"},
                                       "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.5}},
            "proxy": {"meta": {"provider_name": "openai", "request_model": "gpt-4o"},
                      "usage": {"prompt_tokens": 100, "completion_tokens": 50, "cost": 1.25},
                      "cache": {"cache_status": "Miss", "usage": {"prompt_tokens": 999}}},
            "payload": {"usage": {"prompt_tokens": 999}},
        }));
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (110, 55, 165)
        );
        assert_eq!(u.cost_micros, 1_750_000);
        assert_eq!(u.calls, 2);
        assert_eq!(u.provider, "openai", "names come from the proxied call");
        assert_eq!(u.cache_status, "miss");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cache_hits_guardrail_blocks_and_mcp_calls() {
        let hit = read(&json!({"proxy": {
            "meta": {"provider_name": "openai", "request_model": "gpt-4o"},
            "usage": {"prompt_tokens": 28, "completion_tokens": 20, "total_tokens": 48, "cost": 0.0038},
            "cache": {"cache_status": "Hit", "fetch_latency": 444, "embeddings_provider": "openai",
                      "embeddings_model": "text-embedding-3-small", "embeddings_latency": 424}}}));
        assert_eq!(hit.cache_status, "hit");
        assert_eq!(hit.cache_fetch_latency_ms, Some(444));
        assert_eq!(hit.embeddings_model, "text-embedding-3-small");
        assert_eq!(
            hit.total_tokens, 48,
            "reported tokens are kept with the status"
        );

        let blocked = read(&json!({"proxy": {
            "meta": {"provider_name": "bedrock"},
            "aws-guardrails": {"input_processing_latency": 78, "input_block_reason": "PII"},
            "lakera-guard": {"output_block_reason": ""}}}));
        assert_eq!(
            (blocked.guardrail_blocks, blocked.guardrail.as_str()),
            (1, "aws-guardrails")
        );

        let mcp = read(&json!({"mcp": {"mcp_session_id": "s", "rpc": [
            {"method": "initialize", "id": "1"},
            {"method": "tools/call", "id": "19", "tool_name": "weather-route-1", "latency": 200},
            {"method": "tools/call", "id": "20", "tool_name": "orders"}]}}));
        assert_eq!(
            (mcp.mcp_tool_calls, mcp.mcp_tool.as_str()),
            (2, "weather-route-1")
        );
        assert_eq!(mcp.calls, 0);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn malformed_sections_land_what_can_be_read_and_count_the_rest() {
        let huge = "m".repeat(10_000);
        let u = read(&json!({"proxy": {
            "meta": {"provider_name": 7, "request_model": huge, "llm_latency": -5},
            "usage": {"prompt_tokens": -1, "completion_tokens": "12", "total_tokens": 1e300,
                      "cost": "free"}},
            "ai-response-transformer": "not an object"}));
        assert_eq!(u.request_model.len(), MAX_NAME_BYTES);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens),
            (0, 0, 0)
        );
        assert_eq!(u.provider, "");
        assert_eq!(u.llm_latency_ms, None);
        // provider, model cut, latency, prompt, completion, total, cost,
        // the transformer that is not an object.
        assert_eq!(u.unreadable, 8);
        assert_eq!(read_json(b"[1,2").unreadable, 1);
        assert_eq!(read(&json!("ai")).unreadable, 1);
        assert!(read(&json!({})).is_empty());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn sums_are_bounded() {
        let call = json!({"usage": {"prompt_tokens": MAX_TOKENS, "completion_tokens": MAX_TOKENS,
                                    "cost": 1e12}});
        let u = read(&json!({"a": call, "b": call, "c": call}));
        assert_eq!(u.prompt_tokens, MAX_TOKENS);
        assert_eq!(u.total_tokens, MAX_TOKENS);
        assert_eq!(u.cost_micros, MAX_COST_MICROS);
    }
}
