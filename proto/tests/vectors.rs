//! Golden test vectors under `tests/vectors/`: committed bytes that today's
//! reader must read to the committed rows, and that today's builder must
//! reproduce byte for byte. Any incompatible change to the wire format fails
//! here. After a deliberate, compatible change to the encoder, regenerate
//! with `UPDATE_VECTORS=1 cargo test -p kong-looker-proto --features mix --test vectors`
//! and explain the change in the commit. Native only: it reads files.
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;

use kong_looker_proto::builder::{BuilderOptions, InlineAddresses, Producer, SealedBatch};
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_proto::v1::{self, AgentCategory, AuthMethod, Method, ResponseSource, Trust};
use kong_looker_proto::{
    AgentRef, AiRef, BatchBuilder, BatchReader, Dictionary, IdentityRef, Memo, Record, RouteRef,
    Row,
};
use serde_json::{Value, json};

const CUT: i64 = 1_767_614_460_000;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn producer() -> Producer {
    Producer {
        instance_id: *b"\x6b\x6f\x6e\x67\x2d\x6c\x6f\x6f\x6b\x65\x72\x2d\x76\x31\x00\x01",
        node_id: "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa".into(),
        filter_version: "0.1.0".into(),
        kong_version: "3.9.1".into(),
    }
}

/// The vectors, built from fixed inputs with today's builder.
fn build() -> Vec<(&'static str, SealedBatch)> {
    let mut out = Vec::new();
    // These vectors predate inline addresses (revision 3) and keep their
    // revision-1 and -2 bytes; the last two have addresses inline.
    let options = BuilderOptions {
        inline_addresses: InlineAddresses::Never,
        ..BuilderOptions::default()
    };
    let mut builder = BatchBuilder::new(&producer(), options.clone());
    let mut mix = Mix::new(MixParams {
        seed: 2026,
        request_ids: true,
        ..MixParams::default()
    });
    for r in mix.take_requests(100) {
        builder.append(&mix.record(&r)).unwrap();
    }
    let drops = v1::Drops {
        buffer_full: 3,
        dispatch_failed: 2,
        capture_error: 1,
        instance_reset: 0,
        abandoned: vec![],
    };
    let first = builder.seal(CUT, &drops);
    builder.acknowledge(first.ack);
    out.push(("mix_first", first));
    for r in mix.take_requests(100) {
        builder.append(&mix.record(&r)).unwrap();
    }
    out.push((
        "mix_second",
        builder.seal(CUT + 1000, &v1::Drops::default()),
    ));
    // Batch 3 is cut and never delivered: the producer gives up on it, and
    // batch 4 reports its records and its sequence number.
    for r in mix.take_requests(50) {
        builder.append(&mix.record(&r)).unwrap();
    }
    let abandoned = builder.seal(CUT + 2000, &v1::Drops::default());
    for r in mix.take_requests(20) {
        builder.append(&mix.record(&r)).unwrap();
    }
    let drops = v1::Drops {
        dispatch_failed: u64::from(abandoned.record_count),
        abandoned: vec![abandoned.sequence],
        ..v1::Drops::default()
    };
    out.push(("mix_after_abandoned", builder.seal(CUT + 3000, &drops)));

    let mut edge = BatchBuilder::new(&producer(), options.clone());
    let groups = ["gold", "", "partners"];
    let long = "é".repeat(1100);
    let records = [
        Record {
            started_at_ms: CUT - 5000,
            route: RouteRef {
                route_id: "0f1a4101-3327-4274-b1e4-484a4ab0c030",
                route_name: "example_route",
                service_id: "FB4EECF8-DEC2-40EF-B779-16DE7E2384C7",
                service_name: "example_service",
                workspace: "default",
            },
            method: Method::Other,
            method_text: "PROPFIND",
            host: "localhost:8000",
            path: "/example-route/{id}",
            status: 207,
            source: ResponseSource::Upstream,
            latency_total_us: 173_456,
            latency_upstream_us: Some(171_000),
            request_bytes: 139,
            response_bytes: 9982,
            identity: Some(IdentityRef {
                auth_method: AuthMethod::Oidc,
                trust: Trust::Claimed,
                consumer_id: "",
                consumer_username: "",
                consumer_custom_id: "",
                credential: "",
                consumer_groups: &groups,
                subject: "00u1abcd",
                issuer: "https://example.okta.com/oauth2/default",
                client_id: "0oa9xyz",
                anonymous: false,
            }),
            client_address: "192.168.65.0/24",
            agent: Some(AgentRef {
                category: AgentCategory::McpClient,
                name: "claude-code",
            }),
            request_id: "req-not-hex",
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            sample_weight: 4.0,
            ai: None,
            memo: Memo::default(),
        },
        Record {
            started_at_ms: CUT - 4000,
            status: 0,
            latency_total_us: 5,
            latency_upstream_us: None,
            path: &long,
            ..Record::default()
        },
        Record {
            started_at_ms: CUT - 86_400_000,
            method: Method::Delete,
            status: 1200,
            source: ResponseSource::Kong,
            latency_total_us: 86_400_000_000 + 1,
            identity: Some(IdentityRef {
                auth_method: AuthMethod::Unspecified,
                trust: Trust::Verified,
                consumer_id: "",
                consumer_username: "anonymous",
                consumer_custom_id: "",
                credential: "",
                consumer_groups: &[],
                subject: "",
                issuer: "",
                client_id: "",
                anonymous: true,
            }),
            sample_weight: f32::NAN,
            ..Record::default()
        },
    ];
    for r in &records {
        edge.append(r).unwrap();
    }
    out.push(("edge_cases", edge.seal(CUT, &v1::Drops::default())));

    // Revision 2: AI figures on some records (a streamed chat completion, a
    // semantic-cache hit, an MCP tool call); the others carry none.
    let mut ai = BatchBuilder::new(&producer(), options);
    let chat = AiRef {
        provider: "openai",
        request_model: "gpt-4o",
        response_model: "gpt-4o-2024-08-06",
        request_mode: "stream",
        prompt_tokens: 812,
        completion_tokens: 245,
        total_tokens: 1057,
        cost_micros: 4_480,
        llm_latency_ms: Some(2_310),
        time_to_first_token_ms: Some(180),
        calls: 1,
        ..AiRef::default()
    };
    let hit = AiRef {
        provider: "openai",
        request_model: "gpt-4o",
        prompt_tokens: 640,
        completion_tokens: 120,
        total_tokens: 760,
        cost_micros: 2_800,
        cache_status: "hit",
        cache_fetch_latency_ms: Some(0),
        embeddings_model: "text-embedding-3-small",
        calls: 1,
        unreadable: 2,
        ..AiRef::default()
    };
    let mcp = AiRef {
        mcp_tool_calls: 1,
        mcp_tool: "search_orders",
        guardrail_blocks: 1,
        guardrail: "aws-guardrails",
        ..AiRef::default()
    };
    for (i, figures) in [None, Some(&chat), Some(&hit), None, Some(&mcp)]
        .into_iter()
        .enumerate()
    {
        ai.append(&Record {
            started_at_ms: CUT - 3000 + i as i64,
            status: 200,
            latency_total_us: 2_400_000,
            ai: figures,
            ..Record::default()
        })
        .unwrap();
    }
    out.push(("ai_figures", ai.seal(CUT, &v1::Drops::default())));

    // Revision 3: a fresh producer sends the addresses it meets for the
    // first time inline and defines those it meets again; the second batch
    // mixes ids, inline IPv4 and IPv6, and the mix's few AI records.
    let mut inline = BatchBuilder::new(
        &producer(),
        BuilderOptions {
            inline_addresses: InlineAddresses::Always,
            ..BuilderOptions::default()
        },
    );
    let mut mix = Mix::new(MixParams {
        seed: 2027,
        ai_share: 0.05,
        ..MixParams::default()
    });
    for name in ["inline_first", "inline_second"] {
        for r in mix.take_requests(150) {
            inline.append(&mix.record(&r)).unwrap();
        }
        let sealed = inline.seal(CUT, &v1::Drops::default());
        inline.acknowledge(sealed.ack);
        out.push((name, sealed));
    }
    out
}

fn row_json(r: &Row<'_>) -> Value {
    let mut row = json!({
        "started_at_ms": r.started_at_ms,
        "route_id": r.route_id, "route_name": r.route_name,
        "service_id": r.service_id, "service_name": r.service_name, "workspace": r.workspace,
        "method": r.method, "host": r.host, "path": r.path,
        "status": r.status, "response_source": r.response_source,
        "latency_total_us": r.latency_total_us, "latency_upstream_us": r.latency_upstream_us,
        "request_bytes": r.request_bytes, "response_bytes": r.response_bytes,
        "auth_method": r.auth_method, "trust": r.trust, "anonymous": r.anonymous,
        "consumer_id": r.consumer_id, "consumer_username": r.consumer_username,
        "consumer_custom_id": r.consumer_custom_id, "credential": r.credential,
        "consumer_groups": r.consumer_groups.iter().collect::<Vec<_>>(),
        "subject": r.subject, "issuer": r.issuer, "client_id": r.client_id,
        "client_address": r.client_address,
        "agent_category": r.agent_category, "agent_name": r.agent_name,
        "request_id": r.request_id.map(|i| i.to_string()),
        "trace_id": r.trace_id.map(|i| i.to_string()),
        "sample_weight": r.sample_weight,
    });
    // Only rows with AI figures list them, so the revision-1 vectors read
    // exactly as before the columns existed.
    if r.ai_calls.is_some() {
        row["ai"] = json!({
            "provider": r.ai_provider, "request_model": r.ai_request_model,
            "response_model": r.ai_response_model, "request_mode": r.ai_request_mode,
            "prompt_tokens": r.ai_prompt_tokens, "completion_tokens": r.ai_completion_tokens,
            "total_tokens": r.ai_total_tokens, "cost_micros": r.ai_cost_micros,
            "llm_latency_ms": r.ai_llm_latency_ms,
            "time_to_first_token_ms": r.ai_time_to_first_token_ms,
            "cache_status": r.ai_cache_status,
            "cache_fetch_latency_ms": r.ai_cache_fetch_latency_ms,
            "embeddings_model": r.ai_embeddings_model,
            "guardrail_blocks": r.ai_guardrail_blocks, "guardrail": r.ai_guardrail,
            "mcp_tool_calls": r.ai_mcp_tool_calls, "mcp_tool": r.ai_mcp_tool,
            "calls": r.ai_calls, "unreadable": r.ai_unreadable,
        });
    }
    row
}

/// Reads the vectors in order, as one collector would, into JSON.
fn read(vectors: &[(&str, Vec<u8>)]) -> Vec<Value> {
    let reader = BatchReader::default();
    let mut dicts: std::collections::HashMap<[u8; 16], Dictionary> = Default::default();
    vectors
        .iter()
        .map(|(name, bytes)| {
            let batch = reader.decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Each vector set starts a fresh producer dictionary.
            let dict = dicts.entry(batch.instance_id).or_insert_with(|| Dictionary::new(0));
            if ["edge_cases", "ai_figures", "inline_first"].contains(name) {
                *dict = Dictionary::new(0);
            }
            dict.apply(&batch, reader.limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let rows: Vec<Value> = batch.rows(dict).unwrap().map(|r| row_json(&r)).collect();
            let mut out = json!({
                "name": name,
                "instance_id": batch.instance_id_string(),
                "sequence": batch.sequence,
                "node_id": batch.node_id,
                "kong_version": batch.kong_version,
                "drops": [batch.drops.buffer_full, batch.drops.dispatch_failed, batch.drops.capture_error, batch.drops.instance_reset],
                "rows": rows,
            });
            // Only batches that report abandoned batches list them, so the
            // older vectors read exactly as before the field existed.
            if !batch.drops.abandoned.is_empty() {
                out["abandoned"] = json!(batch.drops.abandoned);
            }
            out
        })
        .collect()
}

#[test]
fn committed_vectors_read_to_committed_rows_and_the_builder_reproduces_them() {
    let built = build();
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        let vectors: Vec<(&str, Vec<u8>)> =
            built.iter().map(|(n, s)| (*n, s.bytes.clone())).collect();
        for (name, bytes) in &vectors {
            std::fs::write(dir().join(format!("{name}.bin")), bytes).unwrap();
        }
        let rows = serde_json::to_string_pretty(&read(&vectors)).unwrap();
        std::fs::write(dir().join("rows.json"), rows + "\n").unwrap();
    }
    let committed: Vec<(&str, Vec<u8>)> = built
        .iter()
        .map(|(name, _)| {
            let path = dir().join(format!("{name}.bin"));
            (
                *name,
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            )
        })
        .collect();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("rows.json")).unwrap()).unwrap();
    assert_eq!(
        Value::Array(read(&committed)),
        expected,
        "committed bytes no longer read to the committed rows"
    );
    // The revision-3 vectors exercise every kind of client value.
    for (name, bytes) in committed.iter().filter(|(n, _)| n.starts_with("inline_")) {
        use prost::Message;
        let batch = v1::Batch::decode(bytes.as_slice()).unwrap();
        assert_eq!(batch.schema_revision, 3, "{name}");
        let client = batch.records.unwrap().client;
        for kind in [1, 2] {
            assert!(client.contains(&kind), "{name}: no client value {kind}");
        }
        assert!(client.iter().any(|&c| c >= 3), "{name}: no client id");
    }
    for ((name, sealed), (_, bytes)) in built.iter().zip(&committed) {
        assert!(
            sealed.bytes == *bytes,
            "{name}: the builder's output changed; see this file's docs"
        );
    }
}
