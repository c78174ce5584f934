//! Ingest over real HTTP on 127.0.0.1 into both real stores: what is
//! accepted, what is refused and how, and the http-log path.

mod support;

use support::*;

/// Every refusal names its reason, changes nothing in the store, and is
/// counted by reason in /metrics.
fn refusals(store: TestStore) {
    let c = Collector::start(&store.url(), &["--max-body-bytes", "100000"]);
    let mut p = TestProducer::new(1, false);
    let batch = p.batch(20);
    let url = c.url("/v1/batches");
    let proto = ("content-type", "application/x-protobuf");

    let r = post(&url, &[proto], &batch.bytes);
    assert_eq!(
        (r.status, r.body.contains("missing_signature")),
        (401, true),
        "{r:?}"
    );

    let r = post_batch(&c, &batch.bytes, b"another-key-of-16-bytes-or-more");
    assert_eq!(
        (r.status, r.body.contains("bad_signature")),
        (401, true),
        "{r:?}"
    );

    let stale =
        kong_looker_proto::signing::authorization(KEY, now_ms() / 1000 - 3600, &batch.bytes);
    let r = post(&url, &[proto, ("authorization", &stale)], &batch.bytes);
    assert_eq!((r.status, r.body.contains("stale")), (401, true), "{r:?}");

    let auth = kong_looker_proto::signing::authorization(KEY, now_ms() / 1000, &batch.bytes);
    let r = post(
        &url,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        &batch.bytes,
    );
    assert_eq!(r.status, 415, "{r:?}");

    let big = vec![0u8; 200_000];
    let r = post_batch(&c, &big, KEY);
    assert_eq!(
        (r.status, r.body.contains("too_large")),
        (413, true),
        "{r:?}"
    );

    let garbage = b"\x0a\xff\xff\xff\xff\x0fnot a batch";
    let r = post_batch(&c, garbage, KEY);
    assert_eq!(r.status, 400, "{r:?}");
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["error"], "malformed", "{r:?}");
    assert!(body["message"].as_str().unwrap().len() > 5);

    // A batch whose records are a year old is refused by name.
    let mut old = TestProducer::new(2, false);
    old.mix = kong_looker_proto::mix::Mix::new(kong_looker_proto::mix::MixParams {
        start_ms: now_ms() - 365 * 86_400_000,
        ..Default::default()
    });
    let r = post_batch(&c, &old.batch(5).bytes, KEY);
    assert_eq!(
        (r.status, r.body.contains("time_out_of_range")),
        (400, true),
        "{r:?}"
    );

    // Nothing landed; then the good batch does.
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_requests"), 0);
    assert_eq!(post_batch(&c, &batch.bytes, KEY).status, 204);
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_requests"), 20);

    for (reason, n) in [
        ("missing_signature", 1.0),
        ("stale_signature", 1.0),
        ("bad_signature", 1.0),
        ("too_large", 1.0),
        ("malformed", 1.0),
        ("unsupported_media_type", 1.0),
        ("time_out_of_range", 1.0),
    ] {
        assert_eq!(
            c.metric(&format!(
                "kong_looker_collector_rejected_total{{reason=\"{reason}\"}}"
            )),
            n,
            "{reason}"
        );
    }
    assert_eq!(
        c.metric("kong_looker_collector_records_committed_total"),
        20.0
    );
}
on_every_store!(refusals_are_named_and_change_nothing, refusals);

/// A batch that refers to dictionary entries the collector never saw gets
/// 409 naming `unknown_dictionary`; after the producer redefines, it lands.
fn unknown_dictionary(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(3, false);
    let first = p.batch(50);
    // Pretend the first batch was acknowledged, but never send it.
    p.builder.acknowledge(first.ack);
    let second = p.batch(50);
    let r = post_batch(&c, &second.bytes, KEY);
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.body.contains("unknown_dictionary"), "{r:?}");
    p.deliver(&c, second, std::time::Duration::from_secs(10));
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_requests"), 50);
}
on_every_store!(unknown_dictionary_is_409_then_redefined, unknown_dictionary);

/// Filter rows read back field for field as the codec resolves them.
fn rows_land_as_sent(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(4, true);
    let requests = p.mix.take_requests(300);
    for r in &requests {
        let record = p.mix.record(r);
        p.builder.append(&record).unwrap();
    }
    let batch = p.builder.seal(now_ms(), &Default::default());
    let (decoded, dict) = kong_looker_proto::BatchReader::default()
        .decode_standalone(&batch.bytes)
        .unwrap();
    assert_eq!(post_batch(&c, &batch.bytes, KEY).status, 204);
    let rows = store.rows(
        "SELECT route_name, service_name, method, path, status, latency_total_us, \
         latency_upstream_us, consumer_username, consumer_groups, client_address, \
         agent_name, request_id, origin, instance_id, batch_sequence \
         FROM kong_looker_requests ORDER BY request_id",
    );
    let mut want: Vec<Vec<Option<String>>> = decoded
        .rows(&dict)
        .unwrap()
        .map(|r| {
            let s = |v: Option<&str>| v.map(str::to_owned);
            let groups: Vec<&str> = r.consumer_groups.iter().collect();
            vec![
                s(r.route_name),
                s(r.service_name),
                s(r.method),
                s(r.path),
                r.status.map(|v| v.to_string()),
                Some(r.latency_total_us.to_string()),
                r.latency_upstream_us.map(|v| v.to_string()),
                s(r.consumer_username),
                (!groups.is_empty()).then(|| groups.join(",")),
                s(r.client_address),
                s(r.agent_name),
                r.request_id.map(|i| i.to_string()),
                Some("filter".into()),
                Some(decoded.instance_id_string()),
                Some(batch.sequence.to_string()),
            ]
        })
        .collect();
    want.sort_by(|a, b| a[11].cmp(&b[11]));
    assert_eq!(rows.len(), 300);
    assert_eq!(rows, want);
    // Start times survive to the millisecond, in UTC (to the second on
    // ClickHouse servers before 20.1, which have no DateTime64).
    let first = requests.iter().map(|r| r.started_at_ms).min().unwrap();
    let got = store.rows("SELECT min(started_at) FROM kong_looker_requests")[0][0]
        .clone()
        .unwrap();
    let whole_seconds = matches!(store, TestStore::ClickHouse(_)) && !got.contains('.');
    let first = if whole_seconds {
        first - first.rem_euclid(1000)
    } else {
        first
    };
    let want_time =
        time::OffsetDateTime::from_unix_timestamp_nanos(first as i128 * 1_000_000).unwrap();
    let parsed = parse_time(&got);
    assert_eq!(parsed, want_time, "{got}");
}
on_every_store!(filter_rows_land_field_for_field, rows_land_as_sent);

/// Reads `2026-11-29T03:25:19.123Z` (SQLite), `2026-11-29 03:25:19.123+00`
/// (PostgreSQL) or `2026-11-29 03:25:19[.123]` (ClickHouse, UTC).
fn parse_time(s: &str) -> time::OffsetDateTime {
    let t = s.replace(' ', "T").replace("+00", "Z");
    let t = if t.ends_with('Z') { t } else { t + "Z" };
    let t = if t.ends_with("ZZ") {
        t[..t.len() - 1].to_owned()
    } else {
        t
    };
    time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).unwrap()
}

/// Kong's own sample http-log entry lands with the right fields.
fn kong_sample(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kong_sample.json"
    ))
    .unwrap();
    let r = post_http_log(&c, &sample);
    assert_eq!(r.status, 204, "{r:?}");
    // Kong retries a failed http-log send: the same entry again lands once.
    assert_eq!(post_http_log(&c, &format!("[{sample}]")).status, 204);
    let rows = store.rows(
        "SELECT route_name, service_name, workspace, method, host, path, status, response_source, \
         latency_total_us, latency_upstream_us, request_bytes, response_bytes, client_address, \
         request_id, origin, instance_id FROM kong_looker_requests",
    );
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        rows,
        vec![vec![
            s("example_route"),
            s("example_service"),
            s("default"),
            s("GET"),
            s("localhost:8000"),
            s("/example-route"),
            s("200"),
            s("upstream"),
            s("173000"),
            s("171000"),
            s("139"),
            s("9982"),
            s("192.168.65.1"),
            s("2f6946328ffc4946b8c9120704a4a155"),
            s("http_log"),
            None,
        ]]
    );
    assert_eq!(c.metric("kong_looker_collector_http_log_landed_total"), 1.0);
    assert_eq!(
        c.metric("kong_looker_collector_http_log_duplicate_total"),
        1.0
    );
}
on_every_store!(kong_sample_lands_once, kong_sample);

/// The http-log endpoint wants its token and Kong's JSON.
fn http_log_refusals(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let url = c.url("/v1/kong/http-log");
    let r = post(&url, &[("content-type", "application/json")], b"{}");
    assert_eq!(
        (r.status, r.body.contains("bad_token")),
        (401, true),
        "{r:?}"
    );
    let r = post(&url, &[("authorization", "Bearer wrong")], b"{}");
    assert_eq!(r.status, 401, "{r:?}");
    let r = post_http_log(&c, "{not json");
    assert_eq!(
        (r.status, r.body.contains("malformed")),
        (400, true),
        "{r:?}"
    );
    let r = post_http_log(&c, r#"[{"started_at": 1726783839538}]"#);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        r.body.contains("entry 0: response.status: missing"),
        "{r:?}"
    );
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_requests"), 0);
}
on_every_store!(http_log_refusals_are_named, http_log_refusals);

/// Both paths deployed: a request the filter saw lands once, as the
/// filter's row, whichever path arrives first; a request only http-log saw
/// (rejected before the filter) lands as http-log's.
fn both_paths(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(5, true);
    let reqs = p.mix.take_requests(40);
    for r in &reqs {
        let record = p.mix.record(r);
        p.builder.append(&record).unwrap();
    }
    let batch = p.builder.seal(now_ms(), &Default::default());
    let entry = |id: &str, status: u16| {
        serde_json::json!({
            "started_at": now_ms() - 1000, "request": {"id": id, "method": "GET", "uri": "/x"},
            "response": {"status": status}, "latencies": {"request": 3, "proxy": 2},
            "upstream_status": "200", "source": "upstream"
        })
    };
    let ids: Vec<String> = reqs.iter().map(|r| r.request_id.clone().unwrap()).collect();
    // Half the filter's requests arrive from http-log before the batch...
    let early: Vec<_> = ids[..20].iter().map(|id| entry(id, 200)).collect();
    assert_eq!(
        post_http_log(&c, &serde_json::to_string(&early).unwrap()).status,
        204
    );
    assert_eq!(post_batch(&c, &batch.bytes, KEY).status, 204);
    // ...the other half after it, plus three requests Kong rejected.
    let mut late: Vec<_> = ids[20..].iter().map(|id| entry(id, 200)).collect();
    for (i, status) in [401, 403, 404].into_iter().enumerate() {
        late.push(entry(&format!("{:032x}", 0xdead0000u64 + i as u64), status));
    }
    assert_eq!(
        post_http_log(&c, &serde_json::to_string(&late).unwrap()).status,
        204
    );
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_requests"), 43);
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_requests WHERE origin = 'filter'"),
        40
    );
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_requests WHERE origin = 'http_log' AND status IN (401, 403, 404)"),
        3
    );
    assert_eq!(
        store.count("SELECT count(DISTINCT request_id) FROM kong_looker_requests"),
        43
    );
}
on_every_store!(both_paths_land_each_request_once, both_paths);

#[test]
fn health_and_readiness() {
    let store = TestStore::sqlite();
    let c = Collector::start(&store.url(), &[]);
    assert_eq!(get(&c.url("/healthz")).0, 200);
    assert_eq!(get(&c.url("/readyz")).0, 200);
    let (status, text) = get(&c.url("/metrics"));
    assert_eq!(status, 200);
    assert!(text.contains("kong_looker_collector_store_up 1"), "{text}");
    assert!(text.contains("# EOF"));
}

#[test]
fn serve_refuses_to_start_without_credentials() {
    let err = serve_refused(&["--store", "sqlite:/nonexistent/x.sqlite"]);
    assert!(err.contains("--hmac-key-file"), "{err}");
    assert!(err.contains("--http-log-token-file"), "{err}");
}

/// Each endpoint is turned on by its own credential: a filter-only install
/// gives the batch key alone, an http-log-only one the token alone. An
/// endpoint that is off answers 403 and names the flag that turns it on.
#[test]
fn each_endpoint_is_on_with_its_own_credential() {
    let proto = ("content-type", "application/x-protobuf");
    let json = ("content-type", "application/json");
    let bearer = format!("Bearer {TOKEN}");
    let token = ("authorization", bearer.as_str());

    let store = TestStore::sqlite();
    let batches_only = Collector::start_with_credentials(&store.url(), (true, false), &[]);
    let r = post(
        &batches_only.url("/v1/kong/http-log"),
        &[json, token],
        b"[]",
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.body.contains("endpoint_off") && r.body.contains("--http-log-token-file"),
        "{r:?}"
    );
    let r = post(&batches_only.url("/v1/batches"), &[proto], b"");
    assert_eq!(r.status, 401, "on, and it wants a signature: {r:?}");
    drop(batches_only);

    let store = TestStore::sqlite();
    let http_log_only = Collector::start_with_credentials(&store.url(), (false, true), &[]);
    let r = post(&http_log_only.url("/v1/batches"), &[proto], b"");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.body.contains("endpoint_off") && r.body.contains("--hmac-key-file"),
        "{r:?}"
    );
    let r = post(
        &http_log_only.url("/v1/kong/http-log"),
        &[json, token],
        b"[]",
    );
    assert!(
        r.status != 403 && r.status != 401,
        "on, and the token is right: {r:?}"
    );
}

/// Bodies in flight are bounded in bytes: while one client holds most of
/// the budget with a slow body, the next request gets 429, and once it is
/// gone requests are accepted again.
#[test]
fn body_bytes_in_flight_are_bounded() {
    use std::io::Write;
    let store = TestStore::sqlite();
    let c = Collector::start(
        &store.url(),
        &[
            "--max-body-bytes",
            "100000",
            "--max-inflight-bytes",
            "100000",
        ],
    );
    let mut slow = std::net::TcpStream::connect(c.addr).unwrap();
    write!(
        slow,
        "POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n\
         Authorization: KL1-HMAC-SHA256 t=1,s=00\r\nContent-Length: 99000\r\n\r\n"
    )
    .unwrap();
    slow.write_all(&[0u8; 1000]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut p = TestProducer::new(6, false);
    let batch = p.batch(10);
    let r = post_batch(&c, &batch.bytes, KEY);
    assert_eq!(
        (r.status, r.retry_after.as_deref()),
        (429, Some("1")),
        "{r:?}"
    );
    assert!(r.body.contains("busy"), "{r:?}");
    drop(slow);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(post_batch(&c, &batch.bytes, KEY).status, 204);
}

/// Without TLS, HTTP/2 with prior knowledge works beside HTTP/1.1.
#[test]
fn cleartext_http2_is_served() {
    let store = TestStore::sqlite();
    let c = Collector::start(&store.url(), &[]);
    let addr = c.addr;
    support::stores::block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(conn);
        let request = http::Request::get(format!("http://{addr}/healthz"))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        assert_eq!(response.await.unwrap().status(), 200);
    });
}

/// Kong's sample entry with a 3.10 `ai` section (the proxied call and a
/// transformer's) lands its AI figures field for field, and one whose
/// section is malformed still lands, counting what it could not read.
fn kong_sample_with_ai(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let mut entry: serde_json::Value =
        serde_json::from_str(include_str!("data/kong_sample.json")).unwrap();
    entry["ai"] = serde_json::json!({
        "proxy": {
            "meta": {"provider_name": "openai", "request_model": "gpt-4o",
                     "response_model": "gpt-4o-2024-08-06", "llm_latency": 2310},
            "usage": {"prompt_tokens": 812, "completion_tokens": 245, "total_tokens": 1057,
                      "cost": 0.00448, "time_to_first_token": 180},
            "cache": {"cache_status": "Miss", "fetch_latency": 12}
        },
        "ai-request-transformer": {
            "meta": {"provider_name": "openai", "request_model": "gpt-4o-mini"},
            "usage": {"prompt_tokens": 120, "completion_tokens": 60, "total_tokens": 180, "cost": 0.000054}
        }
    });
    let mut bad = entry.clone();
    bad["request"]["id"] = "2f6946328ffc4946b8c9120704a4ffff".into();
    bad["ai"] =
        serde_json::json!({"proxy": {"usage": {"prompt_tokens": -1, "completion_tokens": "x"}}});
    let r = post_http_log(&c, &serde_json::json!([entry, bad]).to_string());
    assert_eq!(r.status, 204, "{r:?}");
    let rows = store.rows(
        "SELECT ai_provider, ai_request_model, ai_response_model, ai_prompt_tokens, \
         ai_completion_tokens, ai_total_tokens, ai_cost_micros, ai_llm_latency_ms, \
         ai_time_to_first_token_ms, ai_cache_status, ai_cache_fetch_latency_ms, ai_calls, \
         ai_unreadable FROM kong_looker_requests ORDER BY request_id",
    );
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        rows[0],
        [
            s("openai"),
            s("gpt-4o"),
            s("gpt-4o-2024-08-06"),
            s("932"),
            s("305"),
            s("1237"),
            s("4534"),
            s("2310"),
            s("180"),
            s("miss"),
            s("12"),
            s("2"),
            s("0")
        ]
    );
    assert_eq!(rows[1][11], s("1"), "the malformed call still counts");
    assert_eq!(rows[1][12], s("2"), "both bad values are counted");
}
on_every_store!(
    kong_sample_with_ai_lands_field_for_field,
    kong_sample_with_ai
);
