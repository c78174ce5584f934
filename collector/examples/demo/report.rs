//! The demo's report: what the store holds after the run, read the way a
//! Looker admin or an operator would (SQL on the requests table, and the
//! collector's own `stats`), on SQLite or ClickHouse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kong_looker_testsupport::stores::{CH_ENV, ClickHouse};

/// A value as the report reads it.
#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// The demo's store, emptied for the run.
pub enum DemoStore {
    Sqlite(PathBuf),
    ClickHouse(ClickHouse),
}

impl DemoStore {
    /// A fresh store: SQLite in `data`, or the ClickHouse server named by
    /// `clickhouse` (the one `scripts/with-clickhouse` started) or by a
    /// URL, in a database `kong_looker_demo` made anew.
    pub fn fresh(store: Option<&str>, data: &Path) -> DemoStore {
        let Some(store) = store else {
            let db = data.join("kong_looker.sqlite");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
            return DemoStore::Sqlite(db);
        };
        let url = if store == "clickhouse" {
            std::env::var(CH_ENV)
                .unwrap_or_else(|_| {
                    panic!("--store clickhouse runs beside scripts/with-clickhouse (make demo STORE=clickhouse)")
                })
                .replacen("http://", "clickhouse://", 1)
        } else {
            store.to_owned()
        };
        let url = kong_looker_collector::store::ChUrl::parse(&url)
            .unwrap_or_else(|e| panic!("{store}: {e}"));
        let server = ClickHouse {
            endpoint: url.endpoint.clone(),
            user: url.user.clone(),
            password: url.password.clone(),
            database: "kong_looker_demo".into(),
        };
        let admin = ClickHouse {
            database: "default".into(),
            ..server.clone()
        };
        for sql in [
            "DROP DATABASE IF EXISTS kong_looker_demo",
            "CREATE DATABASE kong_looker_demo",
        ] {
            admin
                .query(sql)
                .unwrap_or_else(|e| panic!("{}: {e}", url.endpoint));
        }
        DemoStore::ClickHouse(server)
    }

    /// The collector's `--store`.
    pub fn url(&self) -> String {
        match self {
            DemoStore::Sqlite(db) => format!("sqlite:{}", db.display()),
            DemoStore::ClickHouse(c) => c.store_url(),
        }
    }

    /// The store as the demo names it, without a password.
    pub fn shown(&self) -> String {
        match self {
            DemoStore::Sqlite(db) => format!("sqlite:{}", db.display()),
            DemoStore::ClickHouse(c) => format!(
                "{} (ClickHouse {})",
                self.url()
                    .parse::<kong_looker_collector::store::StoreUrl>()
                    .map_or_else(|e| e, |u| u.to_string()),
                c.query("SELECT version()").unwrap_or_default().trim()
            ),
        }
    }

    /// Every row of a query.
    fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        match self {
            DemoStore::Sqlite(db) => {
                let conn = rusqlite::Connection::open(db).expect("the demo store");
                let mut stmt = conn.prepare(sql).expect(sql);
                let n = stmt.column_count();
                stmt.query_map([], |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                                rusqlite::types::Value::Null => Value::Null,
                                rusqlite::types::Value::Integer(i) => Value::Int(i),
                                rusqlite::types::Value::Real(f) => Value::Real(f),
                                rusqlite::types::Value::Text(t) => Value::Text(t),
                                rusqlite::types::Value::Blob(_) => Value::Text("(blob)".into()),
                            })
                        })
                        .collect()
                })
                .expect(sql)
                .collect::<Result<_, _>>()
                .expect(sql)
            }
            DemoStore::ClickHouse(c) => {
                let text = c
                    .query(&format!("{sql} FORMAT JSONCompact"))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                let doc: serde_json::Value = serde_json::from_str(&text).expect("JSONCompact");
                let value = |v: &serde_json::Value| match v {
                    serde_json::Value::Null => Value::Null,
                    serde_json::Value::Number(n) => n
                        .as_i64()
                        .map_or_else(|| Value::Real(n.as_f64().unwrap_or(0.0)), Value::Int),
                    serde_json::Value::String(s) => Value::Text(s.clone()),
                    other => Value::Text(other.to_string()),
                };
                doc["data"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .map(|r| {
                                r.as_array()
                                    .map(|r| r.iter().map(value).collect())
                                    .unwrap_or_default()
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }
        }
    }

    /// Milliseconds from each batch's receipt to its commit.
    fn commit_lags(&self) -> Vec<f64> {
        let sql = match self {
            DemoStore::Sqlite(_) => {
                "SELECT (julianday(committed_at) - julianday(received_at)) * 86400000.0 \
                 FROM kong_looker_batches"
            }
            DemoStore::ClickHouse(_) => {
                "SELECT (toFloat64(committed_at) - toFloat64(received_at)) * 1000 \
                 FROM kong_looker_batches"
            }
        };
        self.query(sql).iter().map(|r| num(&r[0])).collect()
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Real(r) => format!("{r:.0}"),
        Value::Null => "(none)".into(),
    }
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Real(r) => *r,
        Value::Text(t) => t.parse().unwrap_or(0.0),
        Value::Null => 0.0,
    }
}

/// Prints what the store holds: traffic by route, consumers, failed
/// attempts, AI agents, and the pipeline's books from the collector's own
/// summary (`summary`, from `stats --json`).
pub fn report(
    db: &DemoStore,
    host: &str,
    counters: &BTreeMap<String, u64>,
    summary: &serde_json::Value,
    collector: &str,
    wire_bytes: usize,
) {
    let q = |sql: &str| db.query(sql);

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
        "SELECT coalesce(route_name, '(no route)') AS route, sum(sample_weight) AS n, \
                sum(CASE WHEN status >= 500 THEN sample_weight ELSE 0 END), \
                sum(CASE WHEN status BETWEEN 400 AND 499 THEN sample_weight ELSE 0 END) \
                FROM kong_looker_requests GROUP BY route ORDER BY n DESC LIMIT 12",
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
        "SELECT consumer_username, sum(sample_weight) AS n, count(DISTINCT route_name) \
                FROM kong_looker_requests WHERE consumer_username IS NOT NULL \
                GROUP BY consumer_username ORDER BY n DESC, consumer_username LIMIT 5",
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
        "SELECT coalesce(client_id, consumer_username, '(unidentified)') AS who, \
                sum(CASE WHEN status = 401 THEN 1 ELSE 0 END), \
                sum(CASE WHEN status = 403 THEN 1 ELSE 0 END), \
                sum(CASE WHEN origin = 'http_log' THEN 1 ELSE 0 END), count(*) AS n \
                FROM kong_looker_requests WHERE status IN (401, 403) \
                GROUP BY who ORDER BY n DESC, who LIMIT 6",
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
        "SELECT agent_category, agent_name, sum(sample_weight) AS n FROM kong_looker_requests \
                WHERE agent_category LIKE 'ai_%' OR agent_category = 'mcp_client' \
                GROUP BY agent_category, agent_name ORDER BY n DESC LIMIT 8",
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
        "SELECT coalesce(ai_response_model, ai_request_model, '(none)') AS model, \
                sum(sample_weight), sum(ai_total_tokens * sample_weight), \
                sum(ai_cost_micros * sample_weight) / 1e6 AS cost, \
                sum(CASE WHEN ai_cache_status = 'hit' THEN sample_weight ELSE 0 END), \
                sum(CASE WHEN ai_cache_status IS NOT NULL THEN sample_weight ELSE 0 END) \
                FROM kong_looker_requests WHERE ai_calls IS NOT NULL \
                GROUP BY model ORDER BY cost DESC LIMIT 8",
    ) {
        let mut l = llm.remove(&text(&r[0])).unwrap_or_default();
        l.sort_unstable();
        let p50 = l.get(l.len() / 2).map_or("".into(), |v| v.to_string());
        let hit = match num(&r[5]) {
            0.0 => String::new(),
            cached => format!("{:.0}%", num(&r[4]) / cached * 100.0),
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
    for r in q("SELECT coalesce(workspace, '(none)') AS team, \
                coalesce(agent_category, '(no agent)') AS agent, \
                sum(ai_cost_micros * sample_weight) / 1e6 AS cost FROM kong_looker_requests \
                WHERE ai_calls IS NOT NULL GROUP BY team, agent ORDER BY cost DESC LIMIT 3")
    {
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

    let mut lags = db.commit_lags();
    lags.sort_by(f64::total_cmp);
    let field = |k: &str| summary[k].as_i64().unwrap_or(0);
    // What the batches carried (on ClickHouse an http-log row with more
    // AI figures stands in for the filter's row of that request).
    let delivered = q("SELECT sum(records) FROM kong_looker_batches WHERE state = 'committed'")
        .first()
        .map_or(0.0, |r| num(&r[0]));
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
        "  {} rows in kong_looker_requests ({} with origin filter, {} with origin http_log)",
        field("rows"),
        field("filter_rows"),
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
