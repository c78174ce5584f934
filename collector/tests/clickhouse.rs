//! What only the ClickHouse store has to prove, on a real server: a commit
//! cut short between its inserts is finished by the retry and counts once;
//! two collectors share one producer's traffic; inserts come in groups;
//! and the tables match the Looker project's DDL.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Instant;

use kong_looker_collector::store::clickhouse::{MIGRATIONS, statements};
use support::*;

const REQUESTS: &str = "SELECT count(*) FROM kong_looker_requests";

fn ch(store: &TestStore) -> &stores::ClickHouse {
    match store {
        TestStore::ClickHouse(c) => c,
        _ => unreachable!(),
    }
}

/// A batch's request rows land, then its dictionary insert fails (the
/// table is away; the producer's dictionary is already in the collector's
/// memory): the producer gets 503, and the rows written are not yet a
/// batch. The retry writes them again and finishes; every record counts
/// once, before and after the duplicates are merged away.
#[test]
fn a_commit_cut_short_is_finished_by_the_retry() {
    let store = TestStore::clickhouse();
    let server = ch(&store);
    let c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(60, true);
    let first = p.batch(300);
    p.deliver(&c, first, std::time::Duration::from_secs(10));
    let batch = p.batch(300);
    server
        .query("RENAME TABLE kong_looker_dictionary TO kong_looker_dictionary_away")
        .unwrap();
    let r = post_batch(&c, &batch.bytes, KEY);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        r.body.contains("committing dictionary rows"),
        "the rows went first: {r:?}"
    );
    let raw = "SELECT count() FROM kong_looker_request_rows";
    assert_eq!(
        store.count(raw),
        600,
        "the second batch's rows were written"
    );
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_batches"), 1);
    server
        .query("RENAME TABLE kong_looker_dictionary_away TO kong_looker_dictionary")
        .unwrap();
    assert_eq!(post_batch(&c, &batch.bytes, KEY).status, 204);
    assert_eq!(store.count(raw), 900, "written twice");
    assert_eq!(store.count(REQUESTS), 600, "counted once");
    assert_eq!(
        store.count("SELECT count(DISTINCT request_id) FROM kong_looker_requests"),
        600
    );
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_batches"), 2);
    // A replay after the commit is a duplicate and writes nothing.
    assert_eq!(post_batch(&c, &batch.bytes, KEY).status, 204);
    assert_eq!(store.count(raw), 900);
    server
        .query("OPTIMIZE TABLE kong_looker_request_rows FINAL")
        .unwrap();
    assert_eq!(store.count(raw), 600, "merged");
    assert_eq!(store.count(REQUESTS), 600);
}

/// Two collector processes on one store share one producer's batches, as
/// behind a load balancer: each batch goes to either, some to both at
/// once. Each collector finds the dictionary the other's commits extended
/// in the store (or has the producer redefine), and every record lands
/// exactly once.
fn two_collectors(store: TestStore) {
    let a = Arc::new(Collector::start(&store.url(), &[]));
    let b = Arc::new(Collector::start(&store.url(), &[]));
    let mut p = TestProducer::new(61, true);
    let mut sent = 0;
    for i in 0..30 {
        let batch = p.batch(100);
        sent += 100;
        if i % 5 == 4 {
            // Both at once: one stores it, the other finds it stored (or
            // both write the same rows, which collapse).
            let barrier = Arc::new(Barrier::new(2));
            let bytes = Arc::new(batch.bytes.clone());
            let threads: Vec<_> = [a.clone(), b.clone()]
                .into_iter()
                .map(|c| {
                    let (barrier, bytes) = (barrier.clone(), bytes.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        post_batch(&c, &bytes, KEY).status
                    })
                })
                .collect();
            let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            if statuses.contains(&204) {
                p.builder.acknowledge(batch.ack);
            } else {
                // Both refused it (409: neither had every entry): deliver
                // it the filter's way.
                CollectorAt(a.addr).deliver(&mut p, batch);
            }
        } else {
            let to = if i % 2 == 0 { &a } else { &b };
            CollectorAt(to.addr).deliver(&mut p, batch);
        }
    }
    assert_eq!(store.count(REQUESTS), sent);
    assert_eq!(
        store.count("SELECT count(DISTINCT request_id) FROM kong_looker_requests"),
        sent
    );
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_batches WHERE state = 'committed'"),
        30
    );
    let stored = a.metric("kong_looker_collector_batches_committed_total")
        + b.metric("kong_looker_collector_batches_committed_total");
    assert!(stored >= 30.0, "{stored}");
}

#[test]
fn two_collectors_share_one_producer_on_clickhouse() {
    two_collectors(TestStore::clickhouse());
}

#[test]
fn two_collectors_share_one_producer_on_postgres() {
    two_collectors(TestStore::postgres());
}

/// With the default grouping, many producers sending at once make few,
/// large inserts: about one a second, each well over a thousand rows.
#[test]
fn inserts_come_in_groups_about_once_a_second() {
    let store = TestStore::clickhouse();
    let c = Collector::start(&store.url(), &["--group-linger-ms", "1000"]);
    let addr = c.addr;
    let started = Instant::now();
    let producers: Vec<_> = (0..8u8)
        .map(|n| {
            std::thread::spawn(move || {
                let mut p = TestProducer::new(70 + n, false);
                for _ in 0..6 {
                    let batch = p.batch(300);
                    CollectorAt(addr).deliver(&mut p, batch);
                }
            })
        })
        .collect();
    for t in producers {
        t.join().unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let rows = 8 * 6 * 300;
    assert_eq!(store.count(REQUESTS), rows);
    let commits = c.metric("kong_looker_collector_commit_seconds_count");
    // The first commit starts at once; then one a second, give or take.
    assert!(
        commits <= seconds.ceil() + 2.0,
        "{commits} commits in {seconds:.1} s"
    );
    assert!(
        rows as f64 / commits >= 1000.0,
        "{commits} commits for {rows} rows"
    );
}

/// The collector's migrations and `looker/ddl/clickhouse.sql` hold the
/// same statements, so Looker's tests (in chdb, current ClickHouse) and
/// the collector (on the server) run the same tables.
#[test]
fn the_looker_ddl_is_the_collectors_migrations() {
    let looker = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../looker/ddl/clickhouse.sql"
    ))
    .unwrap();
    let migrations: Vec<String> = MIGRATIONS.iter().flat_map(|m| statements(m.sql)).collect();
    let squeeze = |s: &String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        statements(&looker).iter().map(squeeze).collect::<Vec<_>>(),
        migrations.iter().map(squeeze).collect::<Vec<_>>(),
        "looker/ddl/clickhouse.sql differs from collector/src/store/migrations/clickhouse/"
    );
}

/// A wrong password and an unreachable server are named, not hidden.
#[test]
fn an_unusable_clickhouse_is_named() {
    let store = TestStore::clickhouse();
    let url = store
        .url()
        .replace("clickhouse://default@", "clickhouse://default:wrong@");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"))
        .args(["migrate", "--store", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("clickhouse"), "{err}");
    assert!(
        err.contains("password") || err.contains("Authentication"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the password is shown: {err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"))
        .args(["stats", "--store", "clickhouse://nobody@127.0.0.1:1/none"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("clickhouse at http://127.0.0.1:1"), "{err}");
    assert!(
        err.contains("onnection refused") || err.contains("connect"),
        "{err}"
    );
}

/// Over HTTPS, as a user whose password holds characters a URL must
/// escape, trusting only a private CA (`ca_file`): batches land. With the
/// bundled roots instead, the certificate is refused, and the error says
/// so without showing the password.
#[test]
fn https_with_a_password_and_a_private_ca() {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set; run the tests with `make test` (scripts/with-clickhouse)")
        })
    };
    let (https, ca) = (
        var("KONG_LOOKER_TEST_CLICKHOUSE_HTTPS"),
        var("KONG_LOOKER_TEST_CLICKHOUSE_CA"),
    );
    let store = TestStore::clickhouse();
    let base = format!(
        "{}/{}?secure=true",
        https.replacen("https://", "clickhouse://", 1),
        ch(&store).database
    );
    let url = format!("{base}&ca_file={ca}");
    let c = Collector::start(&url, &[]);
    let mut p = TestProducer::new(62, false);
    let batch = p.batch(50);
    p.deliver(&c, batch, std::time::Duration::from_secs(10));
    assert_eq!(store.count(REQUESTS), 50);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"))
        .args(["stats", "--store", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("kong_looker:***@127.0.0.1"), "{text}");
    assert!(!text.contains("w/rd") && !text.contains("w%2Frd"), "{text}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"))
        .args(["migrate", "--store", &base])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
    assert!(!err.contains("w/rd") && !err.contains("w%2Frd"), "{err}");
}
