//! Exactly once, over real HTTP into both real stores: duplicates,
//! concurrent copies, a collector killed mid-stream, PostgreSQL restarted
//! under load, back-pressure, and a graceful stop.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use support::*;

const REQUESTS: &str = "SELECT count(*) FROM kong_looker_requests";

/// The same batch three times lands once; every copy is acknowledged.
fn duplicates(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(10, false);
    let batch = p.batch(100);
    for _ in 0..3 {
        assert_eq!(post_batch(&c, &batch.bytes, KEY).status, 204);
    }
    assert_eq!(store.count(REQUESTS), 100);
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_batches"), 1);
    assert_eq!(
        c.metric("kong_looker_collector_batches_duplicate_total"),
        2.0
    );
}
on_every_store!(a_duplicate_batch_is_stored_once, duplicates);

/// Eight connections send one batch at the same instant: stored once.
fn concurrent(store: TestStore) {
    let c = Arc::new(Collector::start(&store.url(), &[]));
    let mut p = TestProducer::new(11, false);
    let bytes = Arc::new(p.batch(500).bytes);
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (c, bytes, barrier) = (c.clone(), bytes.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                post_batch(&c, &bytes, KEY).status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, vec![204; 8]);
    assert_eq!(store.count(REQUESTS), 500);
}
on_every_store!(a_batch_sent_concurrently_is_stored_once, concurrent);

/// After a kill -9 and a restart, a producer's next batch still resolves
/// against the dictionary its earlier batches built (read back from the
/// store), without a 409 round trip.
fn dictionary_survives(store: TestStore) {
    let mut c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(12, false);
    let first = p.batch(200);
    p.deliver(&c, first, Duration::from_secs(10));
    c.restart();
    let second = p.batch(200);
    let r = post_batch(&c, &second.bytes, KEY);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(store.count(REQUESTS), 400);
}
on_every_store!(
    a_restarted_collector_keeps_producer_dictionaries,
    dictionary_survives
);

/// Producers stream batches and retry as the filter does while the
/// collector is killed with SIGKILL twice: every record lands exactly once.
fn killed_mid_stream(store: TestStore) {
    let c = Arc::new(std::sync::Mutex::new(Collector::start(&store.url(), &[])));
    let addr = c.lock().unwrap().addr;
    let producers: Vec<_> = (0..3u8)
        .map(|n| {
            std::thread::spawn(move || {
                let mut p = TestProducer::new(20 + n, true);
                for _ in 0..20 {
                    let batch = p.batch(150);
                    // By address: the process behind it changes.
                    CollectorAt(addr).deliver(&mut p, batch);
                }
            })
        })
        .collect();
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(700));
        c.lock().unwrap().restart();
    }
    for t in producers {
        t.join().unwrap();
    }
    assert_eq!(store.count(REQUESTS), 3 * 20 * 150);
    assert_eq!(
        store.count("SELECT count(DISTINCT request_id) FROM kong_looker_requests"),
        3 * 20 * 150
    );
    assert_eq!(store.count("SELECT count(*) FROM kong_looker_batches"), 60);
}
on_every_store!(
    a_collector_killed_mid_stream_loses_and_duplicates_nothing,
    killed_mid_stream
);

/// Holds an exclusive lock on the batches table so commits wait.
struct TableLock {
    release: std::sync::mpsc::Sender<()>,
    done: std::thread::JoinHandle<()>,
}

impl TableLock {
    fn take(url: &str) -> TableLock {
        let url = url.to_owned();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (locked_tx, locked) = std::sync::mpsc::channel();
        let done = std::thread::spawn(move || {
            support::stores::block_on(async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute("BEGIN; LOCK TABLE kong_looker_batches IN ACCESS EXCLUSIVE MODE")
                    .await
                    .unwrap();
                locked_tx.send(()).unwrap();
                let _ = tokio::task::spawn_blocking(move || wait.recv()).await;
                client.batch_execute("COMMIT").await.unwrap();
            })
        });
        locked.recv().unwrap();
        TableLock { release, done }
    }

    fn release(self) {
        self.release.send(()).unwrap();
        self.done.join().unwrap();
    }
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let store = TestStore::postgres();
    let c = Arc::new(Collector::start(
        &store.url(),
        &[
            "--queue",
            "2",
            "--max-group",
            "1",
            "--commit-timeout-ms",
            "60000",
        ],
    ));
    let lock = TableLock::take(&store.url());
    let mut p = TestProducer::new(40, false);
    let batches: Vec<_> = (0..3).map(|_| p.batch(10).bytes).collect();
    // One batch in the committer (waiting on the lock), two in the queue.
    let waiting: Vec<_> = batches
        .into_iter()
        .map(|b| {
            let c = c.clone();
            let t = std::thread::spawn(move || post_batch(&c, &b, KEY).status);
            std::thread::sleep(Duration::from_millis(300));
            t
        })
        .collect();
    let extra = p.batch(10);
    let r = post_batch(&c, &extra.bytes, KEY);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    assert_eq!(c.metric("kong_looker_collector_queue_depth"), 2.0);
    lock.release();
    let statuses: Vec<u16> = waiting.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, vec![204; 3]);
    assert_eq!(post_batch(&c, &extra.bytes, KEY).status, 204);
    assert_eq!(store.count(REQUESTS), 40);
}

#[test]
fn sigterm_finishes_the_commits_in_flight() {
    let store = TestStore::postgres();
    let mut c = Collector::start(&store.url(), &["--commit-timeout-ms", "60000"]);
    let lock = TableLock::take(&store.url());
    let mut p = TestProducer::new(41, false);
    let url = c.url("/v1/batches");
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let bytes = p.batch(30).bytes;
            let url = url.clone();
            std::thread::spawn(move || {
                let auth = kong_looker_proto::signing::authorization(KEY, now_ms() / 1000, &bytes);
                post(
                    &url,
                    &[
                        ("content-type", "application/x-protobuf"),
                        ("authorization", &auth),
                    ],
                    &bytes,
                )
                .status
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        lock.release();
    });
    let status = c.terminate();
    releaser.join().unwrap();
    assert!(status.success(), "{status:?}");
    let statuses: Vec<u16> = waiting.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, vec![204; 3]);
    assert_eq!(store.count(REQUESTS), 90);
}

/// A missing sequence number and the producer's reported drops are both
/// visible: in the batches table, `stats`, and /metrics.
fn gaps_and_drops(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(42, false);
    let one = p.batch(10);
    let _lost = p.batch(10);
    for req in p.mix.take_requests(10) {
        let record = p.mix.record(&req);
        p.builder.append(&record).unwrap();
    }
    let drops = kong_looker_proto::v1::Drops {
        buffer_full: 7,
        dispatch_failed: 3,
        ..Default::default()
    };
    let three = p.builder.seal(now_ms(), &drops);
    // The second batch never arrives; the third defines what it needs
    // because nothing was acknowledged.
    assert_eq!(post_batch(&c, &one.bytes, KEY).status, 204);
    assert_eq!(post_batch(&c, &three.bytes, KEY).status, 204);
    assert_eq!(c.metric("kong_looker_collector_missing_batches"), 1.0);
    assert_eq!(
        c.metric("kong_looker_collector_producer_drops_total{reason=\"buffer_full\"}"),
        7.0
    );
    assert_eq!(
        store.count(
            "SELECT sum(drops_buffer_full + drops_dispatch_failed) FROM kong_looker_batches"
        ),
        10
    );
    let stats = stats(&store);
    assert_eq!(stats["rows"], 20);
    assert_eq!(stats["batches"], 2);
    assert_eq!(stats["producers"], 1);
    assert_eq!(stats["missing_batches"], 1);
    assert_eq!(stats["drops_buffer_full"], 7);
    assert_eq!(stats["drops_dispatch_failed"], 3);
    assert!(stats["newest_commit"].as_str().unwrap().ends_with('Z'));
}
on_every_store!(gaps_and_drops_are_visible, gaps_and_drops);

/// The collector's `stats --json`.
/// Checks `stats --json`'s (batches, missing, abandoned); returns it all.
fn batch_books(store: &TestStore, want: (u64, u64, u64)) -> serde_json::Value {
    let s = stats(store);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("no {k} in {s}"));
    assert_eq!(
        (n("batches"), n("missing_batches"), n("abandoned_batches")),
        want,
        "{s}"
    );
    s
}

fn stats(store: &TestStore) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"))
        .args(["stats", "--json", "--store", &store.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Gaps that the drops explain are not missing: a batch the producer
/// reports abandoning (`drops.abandoned`) covers its sequence number in
/// `stats`, /metrics and the batches table, and a batch lost in transit
/// still counts. A late copy of an abandoned batch is stored and takes the
/// notice's place; notices for committed or impossible numbers change
/// nothing.
fn abandoned_gaps(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(43, false);
    let one = p.batch(10);
    let two = p.batch(10); // given up on, then arrives late
    let _three = p.batch(10); // lost in transit: nobody reports it
    for req in p.mix.take_requests(10) {
        let record = p.mix.record(&req);
        p.builder.append(&record).unwrap();
    }
    let reported = kong_looker_proto::v1::Drops {
        dispatch_failed: 10,
        abandoned: vec![two.sequence],
        ..Default::default()
    };
    let four = p.builder.seal(now_ms(), &reported);
    assert_eq!(post_batch(&c, &one.bytes, KEY).status, 204);
    assert_eq!(post_batch(&c, &four.bytes, KEY).status, 204);
    assert_eq!(c.metric("kong_looker_collector_missing_batches"), 1.0);
    let s = batch_books(&store, (2, 1, 1));
    assert_eq!(s["drops_dispatch_failed"], 10);
    // Batch 2's notice: a row of its own, empty, in state 'abandoned'.
    assert_eq!(
        store.rows(
            "SELECT sequence, state, records, node_id FROM kong_looker_batches ORDER BY sequence"
        ),
        [
            ["1", "committed", "10"],
            ["2", "abandoned", "0"],
            ["4", "committed", "10"]
        ]
        .map(|r| {
            let mut r: Vec<_> = r.iter().map(|v| Some(v.to_string())).collect();
            r.push(Some("5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa".into()));
            r
        })
    );

    // A copy of batch 2 that was still on its way lands after all.
    assert_eq!(post_batch(&c, &two.bytes, KEY).status, 204);
    assert_eq!(store.count(REQUESTS), 30);
    assert_eq!(c.metric("kong_looker_collector_missing_batches"), 1.0);
    batch_books(&store, (3, 1, 0));
    assert_eq!(
        store.count(
            "SELECT records FROM kong_looker_batches WHERE sequence = 2 AND state = 'committed'"
        ),
        10
    );

    // Batch 5 reports 3 (never arrived: now explained), 4 (committed: no
    // change), 0 and 9 (no batch of this producer before 5: ignored).
    let notices = kong_looker_proto::v1::Drops {
        abandoned: vec![3, 4, 0, 9, 3],
        ..Default::default()
    };
    let five = p.builder.seal(now_ms(), &notices);
    assert_eq!(post_batch(&c, &five.bytes, KEY).status, 204);
    assert_eq!(c.metric("kong_looker_collector_missing_batches"), 0.0);
    batch_books(&store, (4, 0, 1));
    assert_eq!(
        store.rows("SELECT sequence, state FROM kong_looker_batches ORDER BY sequence"),
        [
            ["1", "committed"],
            ["2", "committed"],
            ["3", "abandoned"],
            ["4", "committed"],
            ["5", "committed"]
        ]
        .map(|r| r.map(|v| Some(v.to_string())).to_vec())
    );
    // A retry of batch 5 is a duplicate, notices and all.
    assert_eq!(post_batch(&c, &five.bytes, KEY).status, 204);
    assert_eq!(stats(&store)["abandoned_batches"], 1);
    assert_eq!(c.metric("kong_looker_collector_missing_batches"), 0.0);
}
on_every_store!(gaps_the_drops_explain_are_not_missing, abandoned_gaps);

/// A batch the collector committed, whose answer the producer lost and
/// which it then gave up on, counts once: stored, and not also dropped.
/// The producer counted its records (and credited again the drops it
/// carried) in the batch that reports it abandoned; the store takes both
/// off that batch.
fn committed_then_abandoned(store: TestStore) {
    let c = Collector::start(&store.url(), &[]);
    let mut p = TestProducer::new(44, false);
    let one = p.batch(10);
    assert_eq!(post_batch(&c, &one.bytes, KEY).status, 204);
    for req in p.mix.take_requests(5) {
        let record = p.mix.record(&req);
        p.builder.append(&record).unwrap();
    }
    let reported = kong_looker_proto::v1::Drops {
        dispatch_failed: 10 + 3,
        capture_error: 2,
        abandoned: vec![one.sequence],
        ..Default::default()
    };
    let two = p.builder.seal(now_ms(), &reported);
    assert_eq!(post_batch(&c, &two.bytes, KEY).status, 204);
    let s = stats(&store);
    assert_eq!(
        (
            &s["drops_dispatch_failed"],
            &s["drops_capture_error"],
            &s["abandoned_batches"],
            &s["missing_batches"]
        ),
        (&3.into(), &2.into(), &0.into(), &0.into()),
        "{s}"
    );
    assert_eq!(store.count(REQUESTS), 15);
}

on_every_store!(
    a_committed_batch_given_up_on_counts_as_stored_only,
    committed_then_abandoned
);
