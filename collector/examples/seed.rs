//! Fills a store with the reference traffic mix, through the real codec
//! and the collector's own commit path, and writes the generator's ground
//! truth beside it, so that queries over the table (the Looker project's
//! tests, the demo's report) can be checked against what was sent.
//!
//! ```text
//! cargo run -p kong-looker-collector --example seed -- \
//!     --store postgres://postgres@127.0.0.1:5432/analytics --requests 20000 --truth truth.jsonl
//! ```
//!
//! Two producers (two workers) send 1,000-record batches spread over the
//! last `--hours`. One sequence number is skipped (a gap), and one batch
//! reports drops and an abandoned batch (a gap the drops explain), so the
//! pipeline-health views have something to show.
//! `--rejected` adds http-log-only rows: requests Kong's auth plugins
//! refused (401, 403) or that matched no route (404).

use std::io::Write;

use clap::Parser;
use kong_looker_collector::http_log::Mapper;
use kong_looker_collector::store::{BatchCommit, Commit, Store, StoreUrl};
use kong_looker_core::capture::privacy::AddressMode;
use kong_looker_proto::builder::{BuilderOptions, Producer};
use kong_looker_proto::mix::{AI_SHARE, Mix, MixParams};
use kong_looker_proto::row::{agent_category_name, auth_method_name, source_name};
use kong_looker_proto::v1::{Drops, Method};
use kong_looker_proto::{BatchBuilder, BatchReader, Dictionary, Record};
use prost::Message;
use serde_json::json;

#[derive(Debug, Parser)]
struct Args {
    /// `sqlite:PATH` or `postgres://…`; migrated first.
    #[arg(long)]
    store: StoreUrl,
    /// Requests through the filter.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Requests only http-log saw.
    #[arg(long, default_value_t = 300)]
    rejected: usize,
    /// The span of time the requests cover, ending now.
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// Where to write the ground truth, one JSON object per stored request.
    #[arg(long)]
    truth: Option<std::path::PathBuf>,
}

const BATCH: usize = 1000;

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(seed(args));
}

async fn seed(args: Args) {
    let mut store = Store::open(&args.store).await.expect("open store");
    store.migrate().await.expect("migrate");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let span_ms = i64::from(args.hours.max(1)) * 3_600_000;
    let mut mix = Mix::new(MixParams {
        start_ms: now - span_ms,
        rate_per_s: (args.requests as f64 / (span_ms as f64 / 1000.0)).max(0.01),
        request_ids: true,
        ai_share: AI_SHARE,
        ..MixParams::default()
    });
    let mut truth = args
        .truth
        .as_ref()
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("truth file")));
    let reader = BatchReader::default();
    let producers: Vec<Producer> = (0..2u8)
        .map(|n| Producer {
            instance_id: seed_instance(now, n),
            node_id: "seed-node".into(),
            filter_version: env!("CARGO_PKG_VERSION").into(),
            kong_version: "3.9.1".into(),
        })
        .collect();
    let mut builders: Vec<BatchBuilder> = producers
        .iter()
        .map(|p| BatchBuilder::new(p, BuilderOptions::default()))
        .collect();
    let mut dictionaries: Vec<Dictionary> = (0..2).map(|_| Dictionary::new(0)).collect();
    let mut requests = mix.take_requests(args.requests);
    // Arrivals are random: shift them so the last one started a minute ago
    // rather than in the future.
    let last = requests
        .iter()
        .map(|r| r.started_at_ms)
        .max()
        .unwrap_or(now);
    let shift = (last - (now - 60_000)).max(0);
    for r in &mut requests {
        r.started_at_ms -= shift;
    }
    let mut abandoned = None;
    for (i, chunk) in requests.chunks(BATCH).enumerate() {
        let p = i % 2;
        for r in chunk {
            let record = mix.record(r);
            builders[p].append(&record).expect("append");
            if let Some(t) = truth.as_mut() {
                writeln!(t, "{}", truth_line(&record)).expect("truth");
            }
        }
        // The fifth batch (producer 0's third) reports drops, and that
        // producer 0 gave up on the (empty) batch cut after its second, so
        // that gap is explained; the fourth (producer 1's second) is
        // followed by a sequence number that never arrives, unexplained.
        let drops = if i == 4 {
            Drops {
                buffer_full: 12,
                dispatch_failed: 5,
                abandoned: abandoned.take().into_iter().collect(),
                ..Drops::default()
            }
        } else {
            Drops::default()
        };
        let sealed = builders[p].seal(now, &drops);
        if i == 2 {
            abandoned = Some(builders[p].seal(now, &Drops::default()).sequence);
        }
        if i == 3 {
            let _never_sent = builders[p].seal(now, &Drops::default());
        }
        let batch = reader.decode(&sealed.bytes).expect("decode");
        let dict = &mut dictionaries[p];
        let mark = dict.mark();
        dict.apply(&batch, reader.limits()).expect("apply");
        let added = dict.definitions_since(mark).encode_to_vec();
        let commit = Commit {
            batches: vec![BatchCommit {
                batch: &batch,
                dictionary: dict,
                instance_id: batch.instance_id_string(),
                definitions: Some(added),
                received_at_ms: now,
            }],
            log_rows: Vec::new(),
        };
        let report = store.commit(&commit).await.expect("commit");
        assert_eq!(report.inserted, vec![true], "seed into an empty store");
        builders[p].acknowledge(sealed.ack);
    }
    // Requests refused before the filter ran, as Kong's http-log sends them.
    let mapper = Mapper::new(AddressMode::Keep, None);
    let entries: Vec<serde_json::Value> = (0..args.rejected)
        .map(|i| {
            let status = [401, 403, 404][i % 3];
            let started = now - span_ms + (i as i64 * span_ms / args.rejected.max(1) as i64);
            json!({
                "started_at": started,
                "request": {
                    "id": format!("{:032x}", 0xfeed_0000_0000u64 + i as u64),
                    "method": "POST",
                    "uri": format!("/v1/orders/{}", 1000 + i),
                    "size": 120,
                    "headers": {"host": "api.example.com", "user-agent": "python-requests/2.32.3"},
                },
                "response": {"status": status, "size": 60},
                "route": if status == 404 { json!(null) } else { json!({"id": "4d2c6a0e-6d8a-4f70-9f8a-58a2b1f0c001", "name": "orders-api"}) },
                "service": if status == 404 { json!(null) } else { json!({"id": "9b1d9e0e-2f6a-4c1e-8d0e-8e0f6c2b7a01", "name": "orders"}) },
                "workspace_name": "default",
                "kong_looker_team": "commerce",
                "latencies": {"request": 1 + (i % 4), "proxy": -1, "kong": 1},
                "source": "kong",
                "client_ip": format!("203.0.113.{}", i % 250),
            })
        })
        .collect();
    let rows = mapper
        .map(serde_json::to_string(&entries).expect("json").as_bytes())
        .expect("http-log entries");
    for (e, row) in entries.iter().zip(&rows) {
        if let Some(t) = truth.as_mut() {
            let v = row.view().row;
            let line = json!({
                "origin": "http_log",
                "started_at_ms": v.started_at_ms,
                "route_name": v.route_name,
                "service_name": v.service_name,
                "workspace": v.workspace,
                "method": v.method,
                "path": v.path,
                "status": v.status,
                "response_source": v.response_source,
                "latency_total_us": v.latency_total_us,
                "latency_upstream_us": v.latency_upstream_us,
                "request_bytes": v.request_bytes,
                "response_bytes": v.response_bytes,
                "auth_method": null,
                "consumer_username": null,
                "consumer_groups": [],
                "client_id": null,
                "credential": null,
                "subject": null,
                "agent_category": v.agent_category,
                "agent_name": v.agent_name,
                "request_id": e["request"]["id"],
                "sample_weight": 1.0,
            });
            writeln!(t, "{line}").expect("truth");
        }
    }
    let log_rows: Vec<_> = rows.iter().collect();
    store
        .commit(&Commit {
            batches: Vec::new(),
            log_rows,
        })
        .await
        .expect("commit http-log rows");
    if let Some(mut t) = truth {
        t.flush().expect("truth");
    }
    let summary = store.summary().await.expect("summary");
    println!("{}", serde_json::to_string(&summary).expect("json"));
}

/// The ground truth for one filter record, named like the table's columns.
fn truth_line(r: &Record<'_>) -> serde_json::Value {
    let s = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    let id = r.identity.as_ref();
    json!({
        "origin": "filter",
        "started_at_ms": r.started_at_ms,
        "route_name": s(r.route.route_name),
        "service_name": s(r.route.service_name),
        "workspace": s(r.route.workspace),
        "method": kong_looker_proto::row::method_name(r.method)
            .map(str::to_owned)
            .or_else(|| (r.method == Method::Other).then(|| r.method_text.to_owned())),
        "path": s(r.path),
        "status": r.status,
        "response_source": source_name(r.source),
        "latency_total_us": r.latency_total_us,
        "latency_upstream_us": r.latency_upstream_us,
        "request_bytes": r.request_bytes,
        "response_bytes": r.response_bytes,
        "auth_method": id.and_then(|i| auth_method_name(i.auth_method)),
        "consumer_username": id.and_then(|i| s(i.consumer_username)),
        "consumer_groups": id.map(|i| i.consumer_groups.to_vec()).unwrap_or_default(),
        "client_id": id.and_then(|i| s(i.client_id)),
        "credential": id.and_then(|i| s(i.credential)),
        "subject": id.and_then(|i| s(i.subject)),
        "agent_category": r.agent.map(|a| agent_category_name(a.category)),
        "agent_name": r.agent.and_then(|a| s(a.name)),
        "request_id": s(r.request_id),
        "sample_weight": r.sample_weight,
        "ai": r.ai.map(|a| json!({
            "provider": s(a.provider),
            "request_model": s(a.request_model),
            "response_model": s(a.response_model),
            "request_mode": s(a.request_mode),
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
            "total_tokens": a.total_tokens,
            "cost_micros": a.cost_micros,
            "llm_latency_ms": a.llm_latency_ms,
            "time_to_first_token_ms": a.time_to_first_token_ms,
            "cache_status": s(a.cache_status),
            "guardrail_blocks": a.guardrail_blocks,
            "mcp_tool_calls": a.mcp_tool_calls,
            "calls": a.calls,
        })),
    })
}

/// Distinct instance ids per run.
fn seed_instance(now: i64, n: u8) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&now.to_le_bytes());
    id[8] = n;
    id[15] = 0x5e;
    id
}
