//! End to end: the real filter in the test host, real HTTP, the real
//! collector process, on SQLite and on PostgreSQL, with the faults a
//! deployment meets. Every test reconciles what the filter captured with
//! what the store holds.

mod pipeline;
mod support;

use std::time::Duration;

use kong_looker_testkit::{Profile, Sink};
use pipeline::*;
use support::{Metrics, TestStore, post, post_http_log};

fn reconciles(store: TestStore) {
    let c = collector(&store);
    let (mut mix, start) = mix_for(3000, 11);
    let mut kong = kong(&chains(c.addr, None, ""), start);
    let expected = drive(&mut kong, &mut mix, 3000);
    settle(&mut kong, Duration::from_secs(60));
    let books = reconcile(&kong, &store, &expected);
    assert_eq!((books.stored, books.dropped), (3000, 0));
    pinned(&store, &expected);
    if let TestStore::Postgres(_) = store {
        // p95 latency by route, as the Looker view computes it.
        let got = store.rows(
            "SELECT route_name, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_total_us) \
             FROM kong_looker_requests GROUP BY route_name ORDER BY route_name",
        );
        for r in got {
            let route = r[0].clone().unwrap();
            let mut v: Vec<f64> = expected
                .iter()
                .filter(|e| e.route_name.as_deref() == Some(&route))
                .map(|e| e.latency_total_us as f64)
                .collect();
            v.sort_by(f64::total_cmp);
            let rank = 0.95 * (v.len() - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            let want = v[lo] + (v[hi] - v[lo]) * (rank - lo as f64);
            let got: f64 = r[1].as_deref().unwrap().parse().unwrap();
            assert!((got - want).abs() < 1e-6, "{route}: p95 {got} vs {want}");
        }
    }
    if !matches!(store, TestStore::Sqlite(_)) {
        // And the Looker project's own pinned queries, on this data.
        looker_pinned_queries(&store, &expected);
    }
    // The batches the filter sent are the batches the table shows.
    let sent = metrics(&kong)["batches_sent"];
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_batches") as u64,
        sent
    );
}
on_every_store!(the_pipeline_reconciles, reconciles);

/// The collector is killed with SIGKILL mid-stream and restarted; the
/// filter's retries leave no loss and no duplicate.
fn killed(store: TestStore) {
    let mut c = collector(&store);
    let (mut mix, start) = mix_for(3000, 12);
    let mut kong = kong(&chains(c.addr, None, ""), start);
    let mut expected = drive(&mut kong, &mut mix, 1200);
    c.kill9();
    expected.extend(drive(&mut kong, &mut mix, 600));
    c.restart();
    expected.extend(drive(&mut kong, &mut mix, 1200));
    settle(&mut kong, Duration::from_secs(120));
    let books = reconcile(&kong, &store, &expected);
    assert_eq!((books.stored, books.dropped), (3000, 0));
    assert!(metrics(&kong)["batches_retried"] > 0, "the outage was felt");
}
on_every_store!(a_collector_killed_mid_stream_costs_nothing, killed);

/// The collector is away for longer than the filter's buffer can hold:
/// the oldest records are dropped, counted, carried to the collector once
/// it is back, and the books balance exactly.
#[test]
fn a_collector_away_too_long_costs_counted_drops_only() {
    let store = TestStore::sqlite();
    let mut c = collector(&store);
    let (mut mix, start) = mix_for(6000, 13);
    let small = r#"{"flush_interval_ms":100,"max_bytes":16384,"max_records":200}"#;
    let chains = chains(c.addr, Some(small), r#""max_buffer_bytes":65536"#);
    let mut kong = kong(&chains, start);
    let mut expected = drive(&mut kong, &mut mix, 500);
    c.kill9();
    expected.extend(drive(&mut kong, &mut mix, 5000));
    c.restart();
    expected.extend(drive(&mut kong, &mut mix, 500));
    settle(&mut kong, Duration::from_secs(120));
    let books = reconcile(&kong, &store, &expected);
    assert!(books.dropped > 0, "the buffer overflowed");
    assert_eq!(
        store.count("SELECT sum(drops_buffer_full) FROM kong_looker_batches") as u64,
        metrics(&kong)["records_dropped_buffer_full"]
    );
    assert_eq!(books.stored + books.dropped, 6000);
}

/// A forged batch is refused and a replayed one is acknowledged without a
/// second copy: neither changes a row.
#[test]
fn forged_and_replayed_batches_change_nothing() {
    let store = TestStore::sqlite();
    let c = collector(&store);
    // Record one real batch on its way, as an attacker on the path would.
    let tap = Sink::start().unwrap();
    let (mut mix, start) = mix_for(300, 14);
    let tapped_chains: Vec<String> = traffic_chains(&tap.address());
    let mut tapped = kong(&tapped_chains, start);
    drive(&mut tapped, &mut mix, 300);
    tapped.advance(Duration::from_millis(500));
    let batch = tap
        .received()
        .into_iter()
        .next()
        .expect("a batch on the wire");
    let auth = batch.header("authorization").unwrap().to_owned();
    let send = |body: &[u8], auth: &str| {
        post(
            &c.url("/v1/batches"),
            &[
                ("content-type", "application/x-protobuf"),
                ("authorization", auth),
            ],
            body,
        )
    };
    assert_eq!(send(&batch.body, &auth).status, 204);
    let rows = store.count("SELECT count(*) FROM kong_looker_requests");
    assert!(rows > 0);
    // Replayed, byte for byte, with its signature.
    assert_eq!(send(&batch.body, &auth).status, 204);
    // Forged: a changed body under the captured signature, and a body
    // signed with a key the collector does not hold.
    let mut forged = batch.body.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(send(&forged, &auth).status, 401);
    let wrong = kong_looker_proto::signing::authorization(
        b"not-the-collector-key!",
        support::now_ms() / 1000,
        &batch.body,
    );
    assert_eq!(send(&batch.body, &wrong).status, 401);
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_requests"),
        rows
    );
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_batches"), 1);
    assert_eq!(
        c.metric("kong_looker_collector_batches_duplicate_total"),
        1.0
    );
}

fn traffic_chains(addr: &str) -> Vec<String> {
    kong_looker_testsupport::traffic::chains(addr, &extra())
}

/// Both paths deployed: every request the filter saw also arrives from
/// http-log and lands once, as the filter's row; requests Kong rejected
/// before the filter arrive only from http-log, and land too.
fn both_paths(store: TestStore) {
    let c = collector(&store);
    let (mut mix, start) = mix_for(1000, 15);
    let mut kong = kong(&chains(c.addr, None, ""), start);
    let expected = drive(&mut kong, &mut mix, 1000);
    // Half of http-log's entries arrive before the filter's batches.
    let entry = |r: &kong_looker_testsupport::OwnedRow| {
        serde_json::json!({
            "started_at": support::now_ms() - 60_000,
            "request": {"id": r.request_id, "method": r.method, "uri": r.path, "size": r.request_bytes},
            "response": {"status": r.status, "size": r.response_bytes},
            "route": {"id": r.route_id, "name": r.route_name},
            "service": {"id": r.service_id, "name": r.service_name},
            "latencies": {"request": r.latency_total_us / 1000, "proxy": 1},
            "source": "upstream", "upstream_status": "200",
        })
    };
    let (early, late) = expected.split_at(500);
    let body = |rows: &[kong_looker_testsupport::OwnedRow]| {
        serde_json::to_string(&rows.iter().map(entry).collect::<Vec<_>>()).unwrap()
    };
    assert_eq!(post_http_log(&c, &body(early)).status, 204);
    settle(&mut kong, Duration::from_secs(60));
    assert_eq!(post_http_log(&c, &body(late)).status, 204);
    let rejected: Vec<_> = (0..30)
        .map(|i| {
            let status = [401, 403, 404][i as usize % 3];
            serde_json::json!({
                "started_at": support::now_ms() - 30_000,
                "request": {"id": format!("{:032x}", 0xbad0_0000u64 + i), "method": "GET", "uri": "/orders/1"},
                "response": {"status": status},
                "latencies": {"request": 1, "proxy": -1}, "source": "kong",
            })
        })
        .collect();
    assert_eq!(
        post_http_log(&c, &serde_json::to_string(&rejected).unwrap()).status,
        204
    );
    let books = reconcile(&kong, &store, &expected);
    assert_eq!(books.stored, 1000);
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_requests"),
        1030
    );
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_requests WHERE origin = 'http_log'"),
        30
    );
    assert_eq!(
        c.metric("kong_looker_collector_http_log_duplicate_total"),
        1000.0
    );
}
on_every_store!(both_paths_land_each_request_once, both_paths);

#[test]
fn kong_3_8_profile_reaches_the_store_too() {
    let store = TestStore::sqlite();
    let c = collector(&store);
    let (mut mix, start) = mix_for(500, 16);
    let f = kong_looker_testsupport::filter();
    let mut b = kong_looker_testkit::Kong::builder(&f, Profile::Kong38)
        .workers(2)
        .start_at_ms(start);
    for ch in &chains(c.addr, None, "") {
        b = b.chain(ch);
    }
    let mut kong = b.build();
    let mut expected = Vec::new();
    for i in 0..500 {
        let req = mix.next_request();
        let (r, row) = kong_looker_testsupport::traffic::kong_request(&mix, &req, Profile::Kong38);
        assert!(kong.request(i % 2, &r).trap.is_none());
        expected.push(row);
    }
    settle(&mut kong, Duration::from_secs(60));
    let books = reconcile(&kong, &store, &expected);
    assert_eq!(books.stored, 500);
}
