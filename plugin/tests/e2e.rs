//! End to end: the reference mix, plus requests Kong's own plugins reject
//! (401 from key-auth, 403 from acl, 404 with no route), sent as log
//! events by two Kong workers over pooled Unix connections to the real
//! plugin server, which ships signed batches to the real collector on
//! SQLite. Every record is stored once, or dropped and counted; the
//! faults: the collector away past the memory cap, the plugin server
//! stopped with SIGTERM or killed with SIGKILL and restarted, and a
//! configuration change while traffic runs.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_proto::v1::AuthMethod;
use kong_looker_testkit::Request;
use kong_looker_testkit::plugin_server::{KongWorker, LogSnapshot};
use kong_looker_testsupport::stored;
use support::{Collector, KEY, OwnedRow, Plugin, mix_event, now_ms, snapshot, traffic};

const MIX: usize = 3000;
const REJECTED: usize = 400;

struct Event {
    snapshot: LogSnapshot,
    chain: usize,
    want: OwnedRow,
    /// mTLS identity needs nginx variables the log snapshot lacks.
    mtls: bool,
}

/// A request Kong refused before any upstream: as its log snapshot.
fn rejected(m: &Mix, i: usize) -> Event {
    let status = [401u16, 401, 403, 404][i % 4];
    let id = format!("{:032x}", 0xdead_0000_0000u64 + i as u64);
    let route = &m.routes()[0];
    let mut r = Request::new("GET", &format!("/orders/{}", 4000 + i))
        .header("user-agent", "python-requests/2.32.3")
        .property("response.code", status.to_string())
        .property("ngx.request_time", "0.001")
        .property("ngx.request_length", "180")
        .property("ngx.bytes_sent", "52")
        .property("ngx.remote_addr", format!("198.51.100.{}", i % 200))
        .property("ngx.kong_request_id", id.clone());
    if status != 404 {
        r = r
            .property("kong.route_id", route.route_id.clone())
            .property("kong.route_name", route.route_name.clone())
            .property("kong.service_id", route.service_id.clone())
            .property("kong.service_name", route.service_name);
    }
    match status {
        401 => r = r.header("apikey", "sk_live_wrong"),
        403 => {
            r = r
                .header("x-consumer-id", "7a1c0d7e-0000-4000-8000-000000000403")
                .header("x-consumer-username", "scraper-x")
        }
        _ => {}
    }
    Event {
        snapshot: snapshot::of(&r, now_ms()),
        chain: 0,
        want: OwnedRow {
            route_name: (status != 404).then(|| route.route_name.clone()),
            status: Some(status),
            latency_total_us: 1000,
            consumer_username: (status == 403).then(|| "scraper-x".to_string()),
            workspace: Some("commerce".into()),
            request_id: Some(id),
            ..OwnedRow::default()
        },
        mtls: false,
    }
}

/// The mix (`n` requests) and `rejected` refused ones, interleaved.
fn traffic(seed: u64, n: usize, rejected_n: usize) -> Vec<Event> {
    let mut m = Mix::new(MixParams {
        seed,
        request_ids: true,
        ..MixParams::default()
    });
    let mut events: Vec<Event> = (0..n)
        .map(|_| {
            let req = m.next_request();
            let mtls = req
                .consumer
                .is_some_and(|c| m.consumers()[c].auth_method == AuthMethod::Mtls);
            let (snapshot, chain, want) = mix_event(&m, &req);
            Event {
                snapshot,
                chain,
                want,
                mtls,
            }
        })
        .collect();
    let step = (n / rejected_n.max(1)).max(1);
    for i in 0..rejected_n {
        events.insert((i * (step + 1)).min(events.len()), rejected(&m, i));
    }
    events
}

fn workers(plugin: &Plugin) -> Vec<KongWorker> {
    (0..2)
        .map(|_| KongWorker::new(plugin.socket(), "kong-looker"))
        .collect()
}

/// Sends `events` through `workers` (each its own thread), the config
/// of each event being `chains[event.chain]`.
fn send(workers: &mut [KongWorker], events: &[Event], chains: &[String]) {
    let n = workers.len();
    std::thread::scope(|s| {
        for (w, kong) in workers.iter_mut().enumerate() {
            s.spawn(move || {
                for e in events.iter().skip(w).step_by(n) {
                    let report = kong.log(&chains[e.chain], &e.snapshot).unwrap();
                    assert!(report.pdk_calls.len() <= 3, "{:?}", report.pdk_calls);
                }
            });
        }
    });
}

/// The columns every stored row is checked on: the pipeline's, and the
/// rest of what the log snapshot carries.
fn checked() -> Vec<&'static str> {
    let more = [
        "route_id",
        "service_id",
        "service_name",
        "method",
        "host",
        "path",
        "response_source",
        "latency_upstream_us",
        "request_bytes",
        "response_bytes",
        "trust",
        "consumer_id",
        "credential",
        "subject",
        "issuer",
        "client_address",
    ];
    stored::PIPELINE_COLUMNS
        .iter()
        .chain(&more)
        .copied()
        .collect()
}

/// Waits until the store accounts for `total` records (stored or
/// dropped), or for `quiet` with nothing new when some may be lost.
fn settle(collector: &Collector, total: i64, within: Duration) -> (i64, i64) {
    let deadline = Instant::now() + within;
    loop {
        let stored = collector.count(stored::FILTER_ROWS);
        let dropped = collector.count(stored::REPORTED_DROPS);
        if stored + dropped >= total || Instant::now() >= deadline {
            return (stored, dropped);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// No request stored twice, and every stored row is one that was sent.
fn no_duplicates(collector: &Collector, events: &[Event]) -> i64 {
    let stored = collector.count(stored::FILTER_ROWS);
    assert_eq!(
        collector.count(
            "SELECT count(DISTINCT request_id) FROM kong_looker_requests WHERE origin = 'filter'"
        ),
        stored,
        "no request is stored twice"
    );
    let sent: HashSet<&str> = events
        .iter()
        .map(|e| e.want.request_id.as_deref().unwrap())
        .collect();
    for r in collector.rows("SELECT request_id FROM kong_looker_requests WHERE origin = 'filter'") {
        let id = r[0].as_deref().unwrap();
        assert!(sent.contains(id), "{id} was never sent");
    }
    stored
}

fn chains_for(collector: &Collector, more: &str) -> Vec<String> {
    let extra = format!(r#""signing_key":"{KEY}","request_id":true{more}"#);
    traffic::chains(&collector.addr.to_string(), &extra)
}

#[test]
fn the_mix_and_rejected_requests_reconcile_through_the_plugin_server() {
    let collector = Collector::start();
    let mut plugin = Plugin::start(&[]);
    let chains = chains_for(&collector, "");
    let events = traffic(21, MIX, REJECTED);
    let total = events.len() as i64;
    let statuses: HashSet<u16> = events.iter().filter_map(|e| e.want.status).collect();
    for s in [401, 403, 404, 200] {
        assert!(statuses.contains(&s), "the traffic has {s}s");
    }

    // Two workers, each with its own pool and instances, as Kong runs.
    let mut kong = workers(&plugin);
    send(&mut kong, &events, &chains);
    for k in &kong {
        assert_eq!(k.resets, 0);
        assert!(k.rpc.reused > 0, "connections come from the pool");
    }
    let (stored, dropped) = settle(&collector, total, Duration::from_secs(60));
    let status = plugin.terminate(Duration::from_secs(15));
    assert!(status.success());
    assert_eq!(stored + dropped, total, "captured = stored + counted drops");
    assert_eq!(dropped, 0, "a healthy run drops nothing");
    no_duplicates(&collector, &events);

    // Every row is a request that was sent, with its fields intact.
    let by_id: HashMap<&str, &Event> = events
        .iter()
        .map(|e| (e.want.request_id.as_deref().unwrap(), e))
        .collect();
    let checked = checked();
    let rows = collector.rows(&stored::select_by_request_id(&checked));
    assert_eq!(rows.len() as i64, total);
    let mut mtls_rows = 0;
    let mut rejected_rows = 0;
    for r in &rows {
        let id = r[0].as_deref().unwrap();
        let e = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{id} was never sent"));
        let want = &e.want;
        if id.starts_with("00000000000000000000dead") {
            rejected_rows += 1;
            for (i, c) in checked.iter().enumerate() {
                if ["route_name", "status", "consumer_username"].contains(c) {
                    assert_eq!(r[i + 1], stored::column(want, c), "{id} {c}");
                }
            }
            continue;
        }
        let mut got: Vec<Option<String>> = r[1..].to_vec();
        let mut w = stored::expected(want, &checked);
        if e.mtls {
            // Without the certificate (nginx variables, absent from the
            // log snapshot) the consumer is still known from Kong's
            // headers, but not how it authenticated nor its subject.
            mtls_rows += 1;
            for (i, c) in checked.iter().enumerate() {
                if ["auth_method", "trust", "credential", "subject"].contains(c) {
                    got[i] = None;
                    w[i] = None;
                }
            }
        }
        assert_eq!(got, w, "request {id}");
    }
    assert_eq!(rejected_rows, REJECTED);
    eprintln!("{mtls_rows} mTLS rows compared without auth_method");
}

/// The collector away for longer than the lanes' memory cap: the oldest
/// records are dropped, counted, and reported once it is back; the books
/// balance exactly.
#[test]
fn a_collector_away_past_the_cap_costs_counted_drops_only() {
    let (stored, dropped, _) = outage_past_the_cap(&[], 22, None);
    assert!(dropped > 0, "the buffer overflowed");
    assert_eq!(
        stored + dropped,
        6000,
        "stored {stored} + dropped {dropped}"
    );
}

/// The collector killed after 500 of 6,000 events, away for the next 5,000,
/// then back: (stored, dropped) once settled, with no request stored twice,
/// and the spool's files counted while the collector was away.
fn outage_past_the_cap(
    plugin_args: &[&str],
    seed: u64,
    spool: Option<&std::path::Path>,
) -> (i64, i64, usize) {
    let mut collector = Collector::start();
    let plugin = Plugin::start(plugin_args);
    let chains = small_chains(&collector);
    let events = traffic(seed, 6000, 0);
    let mut kong = workers(&plugin);
    send(&mut kong, &events[..500], &chains);
    settle(&collector, 500, Duration::from_secs(30));
    collector.kill9();
    send(&mut kong, &events[500..5500], &chains);
    let spooled = spool.map_or(0, spooled_files);
    collector.restart();
    send(&mut kong, &events[5500..], &chains);
    let (stored, dropped) = settle(&collector, 6000, Duration::from_secs(120));
    no_duplicates(&collector, &events);
    if let Some(dir) = spool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while spooled_files(dir) > 0 {
            assert!(Instant::now() < deadline, "the spool empties");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (stored, dropped, spooled)
}

/// SIGTERM while traffic runs: the server flushes what it holds, Kong's
/// pooled connections fail with "closed", its instances are reset and
/// started again on the restarted server. Nothing is lost.
#[test]
fn sigterm_and_restart_lose_nothing() {
    let collector = Collector::start();
    let mut plugin = Plugin::start(&[]);
    let chains = chains_for(&collector, "");
    let events = traffic(23, 3000, 200);
    let total = events.len() as i64;
    let mut kong = workers(&plugin);
    let half = events.len() / 2;
    send(&mut kong, &events[..half], &chains);
    assert!(plugin.terminate(Duration::from_secs(15)).success());
    plugin.restart();
    send(&mut kong, &events[half..], &chains);
    assert!(
        kong.iter().all(|k| k.resets > 0),
        "Kong reset its instances"
    );
    let (stored, dropped) = settle(&collector, total, Duration::from_secs(60));
    assert_eq!((stored, dropped), (total, 0));
    no_duplicates(&collector, &events);
}

/// SIGKILL while traffic runs: what the server held in memory (the open
/// batch and batches not yet committed) is lost, uncounted; nothing is
/// stored twice, and the loss is bounded by what one flush interval and
/// the in-flight call hold.
#[test]
fn sigkill_loses_at_most_what_was_held() {
    let collector = Collector::start();
    let mut plugin = Plugin::start(&["-metrics-listen", "127.0.0.1:0"]);
    let url = metrics_url(&plugin);
    let chains: Vec<String> = chains_for(&collector, "")
        .into_iter()
        .map(|c| {
            c.replace(
                r#""batch":{"flush_interval_ms":100}"#,
                r#""batch":{"flush_interval_ms":100,"max_records":100}"#,
            )
        })
        .collect();
    let events = traffic(24, 3000, 0);
    let mut kong = workers(&plugin);
    send(&mut kong, &events[..1500], &chains);
    // No event arrives after this: what the process holds now (captured,
    // not yet acknowledged) is all a kill can take.
    let held = metric(&url, "kong_looker_records_captured_total")
        - metric(&url, "kong_looker_records_delivered_total");
    plugin.kill9();
    plugin.restart();
    send(&mut kong, &events[1500..], &chains);
    let (stored, dropped) = settle(&collector, 3000, Duration::from_secs(20));
    let lost = 3000 - stored - dropped;
    eprintln!(
        "SIGKILL lost {lost} of 3000 records (stored {stored}, dropped {dropped}); \
         the process held {held} when killed"
    );
    assert!((0..=held).contains(&lost), "lost {lost}, held {held}");
    no_duplicates(&collector, &events);
}

/// A configuration changes while traffic runs: Kong starts an instance for
/// the new config and closes the old one; records already captured under
/// the old one still go out, on the same lane.
#[test]
fn a_configuration_change_while_traffic_runs_loses_nothing() {
    let collector = Collector::start();
    let plugin = Plugin::start(&[]);
    let chains = chains_for(&collector, "");
    let changed: Vec<String> = chains
        .iter()
        .map(|c| c.replace(r#""flush_interval_ms":100"#, r#""flush_interval_ms":200"#))
        .collect();
    let events = traffic(25, 3000, 100);
    let total = events.len() as i64;
    let mut kong = workers(&plugin);
    let half = events.len() / 2;
    send(&mut kong, &events[..half], &chains);
    for k in kong.iter_mut() {
        for (old, new) in chains.iter().zip(&changed) {
            k.reconfigure(old, new).unwrap();
        }
    }
    send(&mut kong, &events[half..], &changed);
    let (stored, dropped) = settle(&collector, total, Duration::from_secs(60));
    assert_eq!((stored, dropped), (total, 0));
    no_duplicates(&collector, &events);
}

/// `-metrics-listen`: the filter's counters, summed over lanes, agree with
/// what the collector stored.
#[test]
fn metrics_count_what_was_captured_and_delivered() {
    let collector = Collector::start();
    let plugin = Plugin::start(&["-metrics-listen", "127.0.0.1:0"]);
    let url = metrics_url(&plugin);
    let chains = chains_for(&collector, "");
    let events = traffic(31, 500, 20);
    let total = events.len() as i64;
    send(&mut workers(&plugin), &events, &chains);
    assert_eq!(
        settle(&collector, total, Duration::from_secs(30)),
        (total, 0)
    );
    // The lane counts a delivery when it reads the answer, just after the
    // collector stored it: poll briefly.
    let eventually = |name: &str, want: i64| -> i64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = metric(&url, name);
            if v == want || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    for (name, want) in [
        ("kong_looker_records_captured_total", total),
        ("kong_looker_records_delivered_total", total),
        ("kong_looker_records_dropped_buffer_full_total", 0),
        ("kong_looker_buffer_bytes", 0),
    ] {
        assert_eq!(eventually(name, want), want, "{name}");
    }
    assert!(metric(&url, "kong_looker_instances") >= 1);
}

/// Chains with a small memory cap and small batches, so that a collector
/// outage soon passes the cap.
fn small_chains(collector: &Collector) -> Vec<String> {
    chains_for(collector, r#","max_buffer_bytes":65536"#)
        .into_iter()
        .map(|c| {
            c.replace(
                r#""batch":{"flush_interval_ms":100}"#,
                r#""batch":{"flush_interval_ms":100,"max_bytes":16384,"max_records":200}"#,
            )
        })
        .collect()
}

/// The same outage as above, with a spool: nothing is dropped, and the
/// spool is empty once the collector is back.
#[test]
fn with_a_spool_a_collector_away_past_the_cap_loses_nothing() {
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap();
    let (stored, dropped, spooled) =
        outage_past_the_cap(&["-spool-dir", dir], 32, Some(spool.path()));
    assert!(spooled > 0, "past the cap, batches went to disk");
    assert_eq!((stored, dropped), (6000, 0));
    eprintln!("{spooled} batches went through the spool");
}

/// Stopped while the collector is away, the plugin server spools what it
/// holds; the next process sends it once the collector is back.
#[test]
fn the_spool_outlives_the_plugin_server() {
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap();
    let mut collector = Collector::start();
    let mut plugin = Plugin::start(&["-spool-dir", dir, "-shutdown-grace-ms", "300"]);
    let chains = chains_for(&collector, "");
    let events = traffic(33, 3000, 100);
    let total = events.len() as i64;
    let mut kong = workers(&plugin);
    let half = events.len() / 2;
    send(&mut kong, &events[..200], &chains);
    settle(&collector, 200, Duration::from_secs(30));
    collector.kill9();
    send(&mut kong, &events[200..half], &chains);
    assert!(plugin.terminate(Duration::from_secs(15)).success());
    assert!(
        spooled_files(spool.path()) > 0,
        "SIGTERM spooled what was held"
    );
    plugin.restart();
    collector.restart();
    send(&mut kong, &events[half..], &chains);
    assert_eq!(
        settle(&collector, total, Duration::from_secs(60)),
        (total, 0)
    );
    no_duplicates(&collector, &events);
}

/// A spool bounded below the outage drops its oldest batches, counted.
#[test]
fn a_full_spool_drops_its_oldest_batches_counted() {
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_str().unwrap();
    let args = ["-spool-dir", dir, "-spool-max-bytes", "60000"];
    let (stored, dropped, _) = outage_past_the_cap(&args, 34, Some(spool.path()));
    assert!(dropped > 0, "the spool overflowed");
    assert_eq!(
        stored + dropped,
        6000,
        "stored {stored} + dropped {dropped}"
    );
}

/// Batch files in a spool folder, across destinations.
fn spooled_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter(|f| f.path().extension().is_some_and(|e| e == "batch"))
        .count()
}

/// The `-metrics-listen` URL the plugin server logged.
fn metrics_url(plugin: &Plugin) -> String {
    plugin.wait_for_log("metrics on http://");
    plugin
        .stderr()
        .lines()
        .find_map(|l| l.split("metrics on ").nth(1).map(str::to_owned))
        .unwrap()
}

/// One sample of `GET /metrics`.
fn metric(url: &str, name: &str) -> i64 {
    let (status, text) = kong_looker_testsupport::get(url);
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

/// `collector: unix:/path`: the collector on this host, reached over its
/// socket; everything lands.
#[test]
fn a_collector_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("unix:{}", dir.path().join("collector.sock").display());
    let collector = Collector::start_with(&["--listen", &listen]);
    let plugin = Plugin::start(&[]);
    let chains = traffic::chains(
        &listen,
        &format!(r#""signing_key":"{KEY}","request_id":true"#),
    );
    let events = traffic(41, 500, 20);
    let total = events.len() as i64;
    send(&mut workers(&plugin), &events, &chains);
    assert_eq!(
        settle(&collector, total, Duration::from_secs(30)),
        (total, 0)
    );
    no_duplicates(&collector, &events);
}

/// `tls` with `collector_host`: connect to `collector` (an address, or a
/// unix socket), check the certificate against `collector_host` (the
/// server name sent, and the Host header), trusting `-ca-file`. A name
/// the certificate does not carry gets nothing through, and says why.
#[test]
fn https_checks_the_certificate_against_collector_host() {
    let cert = rcgen::generate_simple_self_signed(vec!["collector.internal".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.signing_key.serialize_pem()).unwrap();
    let socket = format!("unix:{}", dir.path().join("collector.sock").display());
    let collector = Collector::start_with(&[
        "--tls-cert",
        cert_pem.to_str().unwrap(),
        "--tls-key",
        key_pem.to_str().unwrap(),
        "--listen",
        &socket,
    ]);
    let plugin = Plugin::start(&["-ca-file", cert_pem.to_str().unwrap()]);
    let tls = |name: &str| {
        format!(r#""signing_key":"{KEY}","request_id":true,"tls":true,"collector_host":"{name}""#)
    };
    let mut total = 0;
    // Rejected requests have fixed ids: only the first round has them.
    for (seed, rejected, upstream) in [
        (43, 10, collector.addr.to_string()),
        (44, 0, socket.clone()),
    ] {
        let events = traffic(seed, 300, rejected);
        total += events.len() as i64;
        let chains = traffic::chains(&upstream, &tls("collector.internal"));
        send(&mut workers(&plugin), &events, &chains);
        assert_eq!(
            settle(&collector, total, Duration::from_secs(30)),
            (total, 0),
            "over {upstream}"
        );
    }

    let wrong = traffic::chains(&collector.addr.to_string(), &tls("other.internal"));
    send(&mut workers(&plugin), &traffic(45, 50, 0), &wrong);
    plugin.wait_for_log("other.internal");
    assert!(
        plugin
            .stderr()
            .contains("certificate not valid for name \"other.internal\""),
        "{}",
        plugin.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(collector.count(stored::FILTER_ROWS), total);
}

/// Issue 16's wire goal: the same bytes per record as the filter (24 at
/// most), measured as the filter's test measures it (`tests/delivery.rs`):
/// the reference mix at its 2,000 requests per second of request time,
/// six chains to one collector, default batching, request ids off; the
/// second 40,000 records are the steady state.
#[test]
fn the_reference_mix_costs_at_most_24_bytes_per_record_on_the_wire() {
    use kong_looker_testkit::{Profile, Sink};
    use kong_looker_testsupport::Collected;
    let sink = Sink::start().unwrap();
    let plugin = Plugin::start(&[]);
    let chains = traffic::default_batching_chains(&sink.address());
    let mut mix = Mix::new(MixParams::default());
    let base = now_ms();
    let events: Vec<(LogSnapshot, usize)> = mix
        .take_requests(80_000)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (req, _) = traffic::kong_request(&mix, r, Profile::Kong39);
            (snapshot::of(&req, base + i as i64 / 2), req.chain)
        })
        .collect();
    let rows = |received: &[kong_looker_testkit::Received]| Collected::from(received).rows.len();
    let arrived = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = sink.received();
            if rows(&received) >= n || Instant::now() > deadline {
                return received;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let mut kong = workers(&plugin);
    let (first, second) = events.split_at(40_000);
    let chains = &chains;
    let mut warm = 0;
    for (half, want) in [(first, 40_000), (second, 80_000)] {
        std::thread::scope(|s| {
            for (w, k) in kong.iter_mut().enumerate() {
                s.spawn(move || {
                    for (snapshot, chain) in half.iter().skip(w).step_by(2) {
                        k.log(&chains[*chain], snapshot).unwrap();
                    }
                });
            }
        });
        let received = arrived(want);
        assert_eq!(rows(&received), want);
        if want == 40_000 {
            warm = received.len();
        }
    }
    let received = sink.received();
    let bytes = |b: &[kong_looker_testkit::Received]| b.iter().map(|r| r.body.len()).sum::<usize>();
    let first = bytes(&received[..warm]) as f64 / 40_000.0;
    let steady = bytes(&received[warm..]) as f64 / 40_000.0;
    eprintln!("plugin server: first 40,000: {first:.2} bytes per record; next 40,000: {steady:.2}");
    assert!(steady <= 24.0, "{steady:.2} bytes per record");
}
