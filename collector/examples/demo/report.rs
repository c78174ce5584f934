//! The demo's report: what the store holds after the run, read the way a
//! Looker admin or an operator would (SQL on the requests table, and the
//! collector's own `stats`).

use std::collections::BTreeMap;
use std::path::Path;

/// Prints what the store holds: traffic by route, consumers, failed
/// attempts, AI agents, and the pipeline's books from the collector's own
/// summary (`summary`, from `stats --json`).
pub fn report(
    db: &Path,
    host: &str,
    counters: &BTreeMap<String, u64>,
    summary: &serde_json::Value,
    collector: &str,
    wire_bytes: usize,
) {
    let conn = rusqlite::Connection::open(db).expect("the demo store");
    let q = |sql: &str| -> Vec<Vec<rusqlite::types::Value>> {
        let mut stmt = conn.prepare(sql).expect(sql);
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
            .expect(sql)
            .collect::<Result<_, _>>()
            .expect(sql)
    };
    let text = |v: &rusqlite::types::Value| match v {
        rusqlite::types::Value::Text(s) => s.clone(),
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Real(r) => format!("{r:.0}"),
        rusqlite::types::Value::Null => "(none)".into(),
        rusqlite::types::Value::Blob(_) => "(blob)".into(),
    };
    let num = |v: &rusqlite::types::Value| match v {
        rusqlite::types::Value::Integer(i) => *i as f64,
        rusqlite::types::Value::Real(r) => *r,
        _ => 0.0,
    };

    println!();
    println!("By route (requests weighted by sampling; p95 of total latency)");
    println!(
        "  {:<26} {:>9} {:>7} {:>7} {:>9}",
        "route", "requests", "5xx", "4xx", "p95 ms"
    );
    let mut latencies: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in
        q("SELECT coalesce(route_name, '(no route)'), latency_total_us FROM kong_looker_requests")
    {
        latencies
            .entry(text(&r[0]))
            .or_default()
            .push(num(&r[1]) as i64);
    }
    for r in q(
        "SELECT coalesce(route_name, '(no route)'), sum(sample_weight), \
                sum(CASE WHEN status >= 500 THEN sample_weight ELSE 0 END), \
                sum(CASE WHEN status BETWEEN 400 AND 499 THEN sample_weight ELSE 0 END) \
                FROM kong_looker_requests GROUP BY 1 ORDER BY 2 DESC LIMIT 12",
    ) {
        let route = text(&r[0]);
        let mut l = latencies.remove(&route).unwrap_or_default();
        l.sort_unstable();
        let p95 = l
            .get((l.len().saturating_sub(1)) * 95 / 100)
            .copied()
            .unwrap_or(0);
        println!(
            "  {:<26} {:>9.0} {:>7.0} {:>7.0} {:>9.1}",
            route,
            num(&r[1]),
            num(&r[2]),
            num(&r[3]),
            p95 as f64 / 1000.0
        );
    }
    println!();
    println!("Top consumers");
    for r in q(
        "SELECT consumer_username, sum(sample_weight), count(DISTINCT route_name) \
                FROM kong_looker_requests WHERE consumer_username IS NOT NULL \
                GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
    ) {
        println!(
            "  {:<26} {:>9.0} requests on {} routes",
            text(&r[0]),
            num(&r[1]),
            text(&r[2])
        );
    }
    println!();
    println!("Failed attempts (401 and 403) by client id");
    for r in q(
        "SELECT coalesce(client_id, consumer_username, '(unidentified)'), \
                sum(CASE WHEN status = 401 THEN 1 ELSE 0 END), \
                sum(CASE WHEN status = 403 THEN 1 ELSE 0 END), \
                sum(CASE WHEN origin = 'http_log' THEN 1 ELSE 0 END) \
                FROM kong_looker_requests WHERE status IN (401, 403) \
                GROUP BY 1 ORDER BY count(*) DESC LIMIT 6",
    ) {
        println!(
            "  {:<26} {:>6} x 401 {:>6} x 403   ({} seen only by http-log)",
            text(&r[0]),
            text(&r[1]),
            text(&r[2]),
            text(&r[3])
        );
    }
    println!();
    println!("AI agents");
    for r in q(
        "SELECT agent_category, agent_name, sum(sample_weight) FROM kong_looker_requests \
                WHERE agent_category LIKE 'ai_%' OR agent_category = 'mcp_client' \
                GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 8",
    ) {
        println!(
            "  {:<14} {:<20} {:>8.0}",
            text(&r[0]),
            text(&r[1]),
            num(&r[2])
        );
    }
    println!();
    println!("AI usage (Kong's AI Gateway: cost in the plugins' price unit, dollars here)");
    println!(
        "  {:<22} {:>8} {:>10} {:>10} {:>9} {:>10}",
        "model", "requests", "tokens", "cost", "cache hit", "LLM p50 ms"
    );
    let mut llm: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in q(
        "SELECT coalesce(ai_response_model, ai_request_model, '(none)'), ai_llm_latency_ms \
                FROM kong_looker_requests WHERE ai_llm_latency_ms IS NOT NULL",
    ) {
        llm.entry(text(&r[0])).or_default().push(num(&r[1]) as i64);
    }
    for r in q(
        "SELECT coalesce(ai_response_model, ai_request_model, '(none)'), sum(sample_weight), \
                sum(ai_total_tokens * sample_weight), sum(ai_cost_micros * sample_weight) / 1e6, \
                sum(CASE WHEN ai_cache_status = 'hit' THEN sample_weight ELSE 0 END) \
                  / nullif(sum(CASE WHEN ai_cache_status IS NOT NULL THEN sample_weight END), 0) \
                FROM kong_looker_requests WHERE ai_calls IS NOT NULL \
                GROUP BY 1 ORDER BY 4 DESC LIMIT 8",
    ) {
        let mut l = llm.remove(&text(&r[0])).unwrap_or_default();
        l.sort_unstable();
        let p50 = l.get(l.len() / 2).map_or("".into(), |v| v.to_string());
        let hit = match &r[4] {
            rusqlite::types::Value::Null => String::new(),
            v => format!("{:.0}%", num(v) * 100.0),
        };
        println!(
            "  {:<22} {:>8.0} {:>10.0} {:>10.2} {:>9} {:>10}",
            text(&r[0]),
            num(&r[1]),
            num(&r[2]),
            num(&r[3]),
            hit,
            p50
        );
    }
    for r in q(
        "SELECT coalesce(workspace, '(none)'), coalesce(agent_category, '(no agent)'), \
                sum(ai_cost_micros * sample_weight) / 1e6 FROM kong_looker_requests \
                WHERE ai_calls IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 3",
    ) {
        println!(
            "  cost by team and agent: {:<10} {:<14} {:>10.2}",
            text(&r[0]),
            text(&r[1]),
            num(&r[2])
        );
    }
    for r in q(
        "SELECT coalesce(sum(ai_guardrail_blocks * sample_weight), 0), \
                coalesce(sum(ai_mcp_tool_calls * sample_weight), 0), \
                coalesce(sum(ai_unreadable), 0), \
                sum(CASE WHEN ai_calls IS NOT NULL AND origin = 'filter' THEN 1 ELSE 0 END) \
                FROM kong_looker_requests",
    ) {
        println!(
            "  {:.0} guardrail blocks, {:.0} MCP tool calls, {:.0} unreadable values; {:.0} AI rows from {host}, merged with http-log's figures where it ran",
            num(&r[0]),
            num(&r[1]),
            num(&r[2]),
            num(&r[3])
        );
    }

    let mut lags: Vec<f64> = q(
        "SELECT (julianday(committed_at) - julianday(received_at)) * 86400000.0 \
                                FROM kong_looker_batches",
    )
    .iter()
    .map(|r| num(&r[0]))
    .collect();
    lags.sort_by(f64::total_cmp);
    let field = |k: &str| summary[k].as_i64().unwrap_or(0);
    let delivered = field("filter_rows") as f64;
    let dropped = field("drops_buffer_full")
        + field("drops_dispatch_failed")
        + field("drops_capture_error")
        + field("drops_instance_reset");
    println!();
    println!("Pipeline");
    println!(
        "  captured {} by {host}; delivered {:.0}; dropped {} (counted by reason in the batches table)",
        counters.get("records_captured").copied().unwrap_or(0),
        delivered,
        dropped
    );
    println!(
        "  {} batches committed; {:.0} duplicate deliveries refused; {:.1} bytes per record on the wire\n  \
         (Kong's request id, on because http-log runs too, is 16 of them; see bench/RESULTS.md)",
        field("batches"),
        metric(collector, "kong_looker_collector_batches_duplicate_total"),
        wire_bytes as f64 / delivered.max(1.0)
    );
    println!(
        "  {} rows in kong_looker_requests ({:.0} from {host}, {} from http-log only)",
        field("rows"),
        delivered,
        field("http_log_rows")
    );
    if !lags.is_empty() {
        println!(
            "  freshness: received to committed {:.0} ms median, {:.0} ms p95 (in Kong, add the flush interval, 1 s)",
            lags[lags.len() / 2],
            lags[(lags.len() - 1) * 95 / 100]
        );
    }
}

fn metric(text: &str, sample: &str) -> f64 {
    kong_looker_collector::metrics::sample(text, sample).unwrap_or(0.0)
}
