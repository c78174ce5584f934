//! Kong's AI Gateway section (`ai` in the serialized log entry) lands the
//! same through both paths that read it: Kong's http-log plugin posting to
//! the collector, and the plugin server's log phase shipping a batch. Kong's
//! own sample entry, extended with real-shaped `ai` sections (a chat
//! completion behind a request transformer, a semantic-cache hit, a
//! guardrail block, an MCP tool call) and with malformed ones, goes to two
//! real collectors on SQLite, one per path; the AI columns must match each
//! other and the figures pinned here, field for field. A malformed section
//! lands what it can and counts the rest, never failing its batch.

mod support;

use std::time::{Duration, Instant};

use kong_looker_testkit::plugin_server::{KongWorker, LogSnapshot};
use kong_looker_testsupport::collector::post_http_log;
use serde_json::{Value, json};
use support::{Collector, KEY, Plugin, now_ms};

const SAMPLE: &str = include_str!("../../collector/tests/data/kong_sample.json");

const AI_COLUMNS: &str = "request_id, status, ai_provider, ai_request_model, ai_response_model, \
    ai_request_mode, ai_prompt_tokens, ai_completion_tokens, ai_total_tokens, ai_cost_micros, \
    ai_llm_latency_ms, ai_time_to_first_token_ms, ai_cache_status, ai_cache_fetch_latency_ms, \
    ai_embeddings_model, ai_guardrail_blocks, ai_guardrail, ai_mcp_tool_calls, ai_mcp_tool, \
    ai_calls, ai_unreadable";

/// (request id suffix, status, the `ai` section).
fn sections() -> Vec<(u32, u16, Value)> {
    let huge = "m".repeat(5000);
    vec![
        // Kong 3.10+: the proxied call under `proxy`, plus a transformer's
        // own LLM call; streamed, semantic cache missed.
        (
            1,
            200,
            json!({
                "proxy": {
                    "meta": {"plugin_id": "6e7c40f6-0000-4000-8000-00000000a001", "provider_name": "openai",
                             "request_model": "gpt-4o", "response_model": "gpt-4o-2024-08-06",
                             "llm_latency": 2310, "request_mode": "stream"},
                    "usage": {"prompt_tokens": 812, "completion_tokens": 245, "total_tokens": 1057,
                              "cost": 0.00448, "time_per_token": 9.4, "time_to_first_token": 180},
                    "cache": {"cache_status": "Miss", "fetch_latency": 12}
                },
                "ai-request-transformer": {
                    "meta": {"plugin_id": "6e7c40f6-0000-4000-8000-00000000a002", "provider_name": "openai",
                             "request_model": "gpt-4o-mini", "response_model": "gpt-4o-mini", "llm_latency": 420},
                    "usage": {"prompt_tokens": 120, "completion_tokens": 60, "total_tokens": 180, "cost": 0.000054}
                }
            }),
        ),
        // A semantic-cache hit: Kong repeats the cached call's usage.
        (
            2,
            200,
            json!({"proxy": {
                "meta": {"plugin_id": "p", "provider_name": "openai", "request_model": "gpt-4o", "response_model": "gpt-4o"},
                "usage": {"prompt_tokens": 28, "completion_tokens": 20, "total_tokens": 48, "cost": 0.0038},
                "cache": {"cache_status": "Hit", "fetch_latency": 444, "embeddings_provider": "openai",
                          "embeddings_model": "text-embedding-3-small", "embeddings_latency": 424}
            }}),
        ),
        // Blocked by AWS Guardrails before any LLM call.
        (
            3,
            400,
            json!({"proxy": {
                "meta": {"plugin_id": "p", "provider_name": "bedrock", "request_model": "anthropic.claude-3-5-sonnet"},
                "aws-guardrails": {"aws_region": "us-east-1", "guardrails_id": "gr-1", "input_processing_latency": 78,
                                   "input_block_reason": "denied topic"}
            }}),
        ),
        // An MCP tool call (ai-mcp-proxy, 3.12+).
        (
            4,
            200,
            json!({"mcp": {
                "mcp_session_id": "0b0c0d0e-0000-4000-8000-000000000004",
                "rpc": [{"method": "tools/call", "id": "19", "tool_name": "search_orders", "latency": 200,
                         "response_body_size": 1053}]
            }}),
        ),
        // Malformed: wrong types, a negative count, a huge model name.
        (
            5,
            200,
            json!({"proxy": {
                "meta": {"provider_name": 5, "request_model": huge, "llm_latency": "slow"},
                "usage": {"prompt_tokens": -4, "completion_tokens": 12, "total_tokens": "30", "cost": "free"}
            }}),
        ),
        // Not an object at all.
        (6, 200, json!("ai-proxy says hello")),
    ]
}

fn request_id(n: u32) -> String {
    format!("2f6946328ffc4946b8c9120704a4{n:04x}")
}

/// Kong's sample entry carrying `ai`, as of now.
fn entry(n: u32, status: u16, ai: &Value) -> Value {
    let mut e: Value = serde_json::from_str(SAMPLE).unwrap();
    e["request"]["id"] = json!(request_id(n));
    e["response"]["status"] = json!(status);
    e["started_at"] = json!(now_ms() - 200);
    e["ai"] = ai.clone();
    e
}

fn snapshot(e: &Value) -> LogSnapshot {
    let headers = e["request"]["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    LogSnapshot {
        serialize: e.clone(),
        request_headers: headers,
        response_status: e["response"]["status"].as_i64().unwrap() as i32,
        req_start_time: 0.0,
        node_id: "node-1".into(),
    }
}

fn ai_rows(c: &Collector) -> Vec<Vec<Option<String>>> {
    c.rows(&format!(
        "SELECT {AI_COLUMNS} FROM kong_looker_requests ORDER BY request_id"
    ))
}

#[test]
fn ai_sections_land_field_for_field_and_the_same_through_both_paths() {
    let entries: Vec<Value> = sections()
        .iter()
        .map(|(n, status, ai)| entry(*n, *status, ai))
        .collect();

    // Path 1: Kong's http-log plugin, all entries in one body.
    let via_log = Collector::start();
    let r = post_http_log(&via_log, &Value::Array(entries.clone()).to_string());
    assert_eq!(r.status, 204, "{r:?}");

    // Path 2: the plugin server's log phase.
    let via_plugin = Collector::start();
    let plugin = Plugin::start(&[]);
    let chain = format!(
        r#"{{"collector":"{}","signing_key":"{KEY}","request_id":true,"batch":{{"flush_interval_ms":50}}}}"#,
        via_plugin.addr
    );
    let mut kong = KongWorker::new(plugin.socket(), "kong-looker");
    for e in &entries {
        kong.log(&chain, &snapshot(e)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while via_plugin.count("SELECT count(*) FROM kong_looker_requests") < entries.len() as i64 {
        assert!(Instant::now() < deadline, "{}", plugin.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }

    let got = ai_rows(&via_log);
    assert_eq!(
        ai_rows(&via_plugin),
        got,
        "both paths land the same AI figures"
    );

    let s = |v: &str| Some(v.to_owned());
    let n = |v: u64| Some(v.to_string());
    let none = None;
    let want = [
        // Tokens and cost add over both calls; names and latency are the
        // proxied call's. Cost: 0.00448 + 0.000054 dollars, in micro-dollars.
        vec![
            s(&request_id(1)),
            n(200),
            s("openai"),
            s("gpt-4o"),
            s("gpt-4o-2024-08-06"),
            s("stream"),
            n(932),
            n(305),
            n(1237),
            n(4534),
            n(2310),
            n(180),
            s("miss"),
            n(12),
            none.clone(),
            n(0),
            none.clone(),
            n(0),
            none.clone(),
            n(2),
            n(0),
        ],
        vec![
            s(&request_id(2)),
            n(200),
            s("openai"),
            s("gpt-4o"),
            s("gpt-4o"),
            none.clone(),
            n(28),
            n(20),
            n(48),
            n(3800),
            none.clone(),
            none.clone(),
            s("hit"),
            n(444),
            s("text-embedding-3-small"),
            n(0),
            none.clone(),
            n(0),
            none.clone(),
            n(1),
            n(0),
        ],
        vec![
            s(&request_id(3)),
            n(400),
            s("bedrock"),
            s("anthropic.claude-3-5-sonnet"),
            none.clone(),
            none.clone(),
            n(0),
            n(0),
            n(0),
            n(0),
            none.clone(),
            none.clone(),
            none.clone(),
            none.clone(),
            none.clone(),
            n(1),
            s("aws-guardrails"),
            n(0),
            none.clone(),
            n(0),
            n(0),
        ],
        vec![
            s(&request_id(4)),
            n(200),
            none.clone(),
            none.clone(),
            none.clone(),
            none.clone(),
            n(0),
            n(0),
            n(0),
            n(0),
            none.clone(),
            none.clone(),
            none.clone(),
            none.clone(),
            none.clone(),
            n(0),
            none.clone(),
            n(1),
            s("search_orders"),
            n(0),
            n(0),
        ],
    ];
    assert_eq!(got[..4], want[..], "the real-shaped sections");

    // The malformed ones: the row lands, with what could be read, and the
    // count of what could not.
    let bad = &got[4];
    assert_eq!(bad[0], s(&request_id(5)));
    assert_eq!(bad[2], none, "a provider that is not a string");
    assert_eq!(bad[7], n(12), "the completion tokens that were readable");
    let unreadable: u32 = bad[20].as_deref().unwrap().parse().unwrap();
    assert!(unreadable >= 4, "{bad:?}");
    let model = bad[3].as_deref().unwrap_or_default();
    assert!(model.len() <= 256, "a huge model name is cut or left out");
    let not_an_object = &got[5];
    assert_eq!(not_an_object[0], s(&request_id(6)));
    assert_eq!(not_an_object[20], n(1));
    assert_eq!(not_an_object[8], n(0));
}
