//! The whole pipeline for the end-to-end tests: the real
//! `dist/kong_looker.wasm` in the test host (Kong 3.9, two workers, the six
//! reference chains), shipping over real HTTP to the real collector
//! process, and the reconciliation of what the filter captured against
//! what the store holds.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::{Kong, Profile};

use crate::support::{Collector, TestStore, now_ms};
use kong_looker_testsupport::{OwnedRow, filter, stored, traffic};

/// The signing key, as the collector's tests use it.
pub const KEY: &str = "collector-test-signing-key";

/// The filter config additions every chain gets: signed batches and Kong's
/// request id (both paths deployed).
pub fn extra() -> String {
    format!(r#""signing_key":"{KEY}","request_id":true"#)
}

/// The six reference chains pointed at `addr`, with `batch` replacing the
/// chains' batch settings when given.
pub fn chains(addr: std::net::SocketAddr, batch: Option<&str>, more: &str) -> Vec<String> {
    let extra = if more.is_empty() {
        extra()
    } else {
        format!("{},{more}", extra())
    };
    traffic::chains(&addr.to_string(), &extra)
        .into_iter()
        .map(|c| match batch {
            Some(b) => c.replace(
                r#""batch":{"flush_interval_ms":100}"#,
                &format!(r#""batch":{b}"#),
            ),
            None => c,
        })
        .collect()
}

/// Kong in the test host, its clock set so that `requests` requests end
/// about now: the host's clock moves with each request's duration, and the
/// collector checks batch times against its own clock.
pub fn kong(chains: &[String], start_ms: u64) -> Kong {
    let f = filter();
    let mut b = Kong::builder(&f, Profile::Kong39)
        .workers(2)
        .start_at_ms(start_ms);
    for c in chains {
        b = b.chain(c);
    }
    b.build()
}

/// The reference mix with Kong request ids, and where its host clock must
/// start for `n` of its requests to end a few seconds from now.
pub fn mix_for(n: usize, seed: u64) -> (Mix, u64) {
    let params = MixParams {
        seed,
        request_ids: true,
        ..MixParams::default()
    };
    let mut probe = Mix::new(params.clone());
    let span_ms: u64 = probe
        .take_requests(n)
        .iter()
        .map(|r| r.total_us / 1000)
        .sum();
    let start = u64::try_from(now_ms()).unwrap() - span_ms - 5_000;
    (Mix::new(params), start)
}

/// Sends `n` requests, turning the clock every 200 so that batches flush
/// as they would under steady traffic; returns what each should become.
pub fn drive(kong: &mut Kong, mix: &mut Mix, n: usize) -> Vec<OwnedRow> {
    let mut expected = Vec::with_capacity(n);
    for i in 0..n {
        let req = mix.next_request();
        let (r, row) = traffic::kong_request(mix, &req, Profile::Kong39);
        let out = kong.request(i % 2, &r);
        assert!(out.trap.is_none(), "the filter trapped: {:?}", out.trap);
        expected.push(row);
        if i % 200 == 199 {
            kong.advance(Duration::from_millis(100));
        }
    }
    expected
}

/// Turns the clock until every captured record is accounted for in the
/// filter's own books (sent or dropped) and nothing is in flight.
pub fn settle(kong: &mut Kong, within: Duration) {
    let until = Instant::now() + within;
    loop {
        kong.advance(Duration::from_millis(250));
        let m = metrics(kong);
        let captured = m.get("records_captured").copied().unwrap_or(0);
        let sent = m.get("records_delivered").copied().unwrap_or(0);
        let dropped: u64 = m
            .iter()
            .filter(|(k, _)| k.starts_with("records_dropped_"))
            .map(|(_, v)| *v)
            .sum();
        let buffered = m.get("buffer_bytes").copied().unwrap_or(0);
        if captured > 0 && sent + dropped == captured && buffered == 0 {
            // One more turn carries the last drop counts in a batch.
            kong.advance(Duration::from_millis(500));
            return;
        }
        assert!(Instant::now() < until, "the filter never settled: {m:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The filter's `pw:kong_looker:*` metrics summed over workers.
pub fn metrics(kong: &Kong) -> BTreeMap<String, u64> {
    kong_looker_testsupport::filter_metrics(kong)
}

/// What the store holds, checked against what the filter captured: every
/// captured record is in the table exactly once or counted as dropped, the
/// counts agree, and each producer's sequence has no gap.
pub struct Books {
    /// Records the filter captured.
    pub captured: u64,
    /// Filter rows in the table.
    pub stored: u64,
    /// Drops the producers reported, all reasons.
    pub dropped: u64,
}

pub fn reconcile(kong: &Kong, store: &TestStore, expected: &[OwnedRow]) -> Books {
    let m = metrics(kong);
    let captured = m["records_captured"];
    let (stored, dropped) = store.stored_and_dropped();
    assert_eq!(
        captured,
        expected.len() as u64,
        "every request was captured"
    );
    assert_eq!(
        stored + dropped,
        captured,
        "stored {stored} + dropped {dropped}"
    );
    let filter_dropped: u64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("records_dropped_"))
        .map(|(_, v)| *v)
        .sum();
    assert_eq!(
        dropped, filter_dropped,
        "drops in the store match the filter's counters"
    );
    assert_eq!(
        store.count(
            "SELECT count(DISTINCT request_id) FROM kong_looker_requests WHERE origin = 'filter'"
        ),
        stored as i64,
        "no request is stored twice"
    );
    // No unexplained gap: a producer's batches run 1..=max, unless it
    // reported dropping records (a dropped pending batch leaves its
    // sequence number unused).
    for row in store.rows(
        "SELECT instance_id, count(*), max(sequence), \
         sum(drops_buffer_full + drops_dispatch_failed) FROM kong_looker_batches \
         GROUP BY instance_id",
    ) {
        let explained = row[3].as_deref() != Some("0");
        assert!(
            row[1] == row[2] || explained,
            "producer {:?} has an unexplained gap",
            row[0]
        );
    }
    // Every stored row is a request that was sent, with its fields intact.
    let by_id: HashMap<&str, &OwnedRow> = expected
        .iter()
        .map(|r| (r.request_id.as_deref().unwrap(), r))
        .collect();
    let rows = store.rows(&stored::select_by_request_id(&stored::PIPELINE_COLUMNS));
    for r in &rows {
        let id = r[0].as_deref().unwrap();
        let want = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{id} was never sent"));
        let got: Vec<Option<String>> = r[1..].to_vec();
        let w = stored::expected(want, &stored::PIPELINE_COLUMNS);
        assert_eq!(got, w, "request {id}");
    }
    Books {
        captured,
        stored,
        dropped,
    }
}

/// The pinned queries of the Looker project's tests, answered by the store
/// and by the generator: requests and 5xx by route, and failed attempts
/// (401 and 403) by client id.
pub fn pinned(store: &TestStore, expected: &[OwnedRow]) {
    let mut by_route: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut failed: BTreeMap<String, i64> = BTreeMap::new();
    for r in expected {
        let e = by_route
            .entry(r.route_name.clone().unwrap_or_default())
            .or_default();
        e.0 += 1;
        e.1 += i64::from(r.status.unwrap_or(0) >= 500);
        if matches!(r.status, Some(401 | 403))
            && let Some(c) = &r.client_id
        {
            *failed.entry(c.clone()).or_default() += 1;
        }
    }
    let got: BTreeMap<String, (i64, i64)> = store
        .rows(
            "SELECT route_name, CAST(sum(sample_weight) AS BIGINT), \
             sum(CASE WHEN status >= 500 THEN 1 ELSE 0 END) \
             FROM kong_looker_requests WHERE origin = 'filter' GROUP BY route_name",
        )
        .into_iter()
        .map(|r| {
            let n = |v: &Option<String>| v.as_deref().unwrap().parse::<f64>().unwrap() as i64;
            (r[0].clone().unwrap_or_default(), (n(&r[1]), n(&r[2])))
        })
        .collect();
    assert_eq!(got, by_route, "requests and 5xx by route");
    let got: BTreeMap<String, i64> = store
        .rows(
            "SELECT client_id, count(*) FROM kong_looker_requests \
             WHERE status IN (401, 403) AND client_id IS NOT NULL GROUP BY client_id",
        )
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, failed, "failed attempts by client id");
}

/// Runs the Looker project's pinned queries (looker/tests/test_pinned.py,
/// its LookML rendered to SQL) against a PostgreSQL or ClickHouse store
/// the pipeline filled, with the generator's numbers as the truth. Start
/// times are the one column taken from the store: the test host's clock
/// decides them. On ClickHouse they run on the server's rows, copied as
/// they are into chdb (current ClickHouse): Looker's ClickHouse SQL needs
/// a newer server than the tests' 18.16.
pub fn looker_pinned_queries(store: &TestStore, expected: &[OwnedRow]) {
    let (env, url, started_ms) = match store {
        TestStore::Postgres(url) => (
            "KONG_LOOKER_LOOKML_STORE",
            url.clone(),
            "CAST(extract(epoch FROM started_at) * 1000 AS BIGINT)",
        ),
        TestStore::ClickHouse(c) => (
            "KONG_LOOKER_LOOKML_CLICKHOUSE",
            format!(
                "http://{}@{}/{}",
                c.user,
                c.endpoint.trim_start_matches("http://"),
                c.database
            ),
            "toInt64(toFloat64(started_at) * 1000)",
        ),
        TestStore::Sqlite(_) => panic!("Looker reads PostgreSQL or ClickHouse"),
    };
    let started: HashMap<String, i64> = store
        .rows(&format!(
            "SELECT request_id, {started_ms} FROM kong_looker_requests"
        ))
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.jsonl");
    let mut lines = String::new();
    for r in expected {
        let id = r.request_id.clone().unwrap();
        let line = serde_json::json!({
            "origin": "filter",
            "started_at_ms": started[&id],
            "route_name": r.route_name, "service_name": r.service_name,
            "workspace": r.workspace, "method": r.method, "path": r.path,
            "status": r.status, "response_source": r.response_source,
            "latency_total_us": r.latency_total_us, "latency_upstream_us": r.latency_upstream_us,
            "request_bytes": r.request_bytes, "response_bytes": r.response_bytes,
            "auth_method": r.auth_method, "consumer_username": r.consumer_username,
            "consumer_groups": r.consumer_groups, "client_id": r.client_id,
            "credential": r.credential, "subject": r.subject,
            "agent_category": r.agent_category, "agent_name": r.agent_name,
            "request_id": id, "sample_weight": r.sample_weight,
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    std::fs::write(&truth, lines).unwrap();
    let python = std::env::var("KONG_LOOKER_PYTHON").unwrap_or_else(|_| {
        let venv =
            std::env::var("HOME").unwrap_or_default() + "/.cache/kong-looker/venv/bin/python";
        assert!(
            std::path::Path::new(&venv).exists(),
            "no Python for the Looker project's tests: run `make tools`, or set KONG_LOOKER_PYTHON"
        );
        venv
    });
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = std::process::Command::new(python)
        .current_dir(root)
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "looker/tests/test_pinned.py",
        ])
        .env(env, url)
        .env("KONG_LOOKER_LOOKML_TRUTH", &truth)
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "Looker's pinned queries disagree with the generator:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // They ran, rather than skipped: pytest's summary, e.g. "12 passed, 13 skipped".
    let passed: u32 = stdout
        .split(" passed")
        .next()
        .and_then(|s| s.rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 10, "too few pinned queries ran:\n{stdout}");
}

/// Starts a collector for the pipeline tests.
pub fn collector(store: &TestStore) -> Collector {
    Collector::start(&store.url(), &[])
}
