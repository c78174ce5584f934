//! The collector's throughput: records decoded and validated per second,
//! rows committed per second to SQLite, rows committed per second to
//! PostgreSQL side by side with a plain binary `COPY` of the same rows, and
//! rows committed per second to ClickHouse side by side with
//! `clickhouse-client` inserting the same rows as RowBinary.
//!
//! `make bench` (which starts a throwaway PostgreSQL and ClickHouse), or
//! `scripts/with-postgres scripts/with-clickhouse cargo bench -p kong-looker-collector --bench collector`.
//! Batches are the reference mix in a producer's steady state, 1,000
//! records each, as the filter sends them.

use std::hint::black_box;
use std::pin::pin;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kong_looker_collector::row::{REQUEST_COLUMNS, RowView};
use kong_looker_collector::store::{BatchCommit, Commit, Store, StoreUrl, postgres};
use kong_looker_proto::builder::{BuilderOptions, Producer};
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_proto::v1::Drops;
use kong_looker_proto::{BatchBuilder, BatchReader, DecodedBatch, Dictionary};

const BATCH: usize = 1000;

/// A producer in its steady state: batches of the reference mix, with
/// times moving forward as a live stream's do (a store's time index sees
/// appends, not inserts into the past), and the dictionary they need.
struct Stream {
    mix: Mix,
    builder: BatchBuilder,
    reader: BatchReader,
    now: i64,
    /// Every entry the batches so far defined.
    dict: Dictionary,
}

impl Stream {
    fn new() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let producer = Producer {
            instance_id: [7; 16],
            node_id: "bench".into(),
            filter_version: "0.1.0".into(),
            kong_version: "3.9.1".into(),
        };
        let mut stream = Stream {
            mix: Mix::new(MixParams {
                start_ms: now - 3_600_000,
                ..MixParams::default()
            }),
            builder: BatchBuilder::new(&producer, BuilderOptions::default()),
            reader: BatchReader::default(),
            now,
            dict: Dictionary::new(0),
        };
        // Past the first batches, which define most of the dictionary.
        for _ in 0..60 {
            stream.next_bytes();
        }
        stream
    }

    /// The next batch's bytes, its dictionary applied.
    fn next_bytes(&mut self) -> (Vec<u8>, DecodedBatch) {
        for r in self.mix.take_requests(BATCH) {
            self.builder.append(&self.mix.record(&r)).unwrap();
        }
        let sealed = self.builder.seal(self.now, &Drops::default());
        let batch = self.reader.decode(&sealed.bytes).unwrap();
        self.dict.apply(&batch, self.reader.limits()).unwrap();
        self.builder.acknowledge(sealed.ack);
        (sealed.bytes, batch)
    }

    /// The next batch, decoded.
    fn next(&mut self) -> DecodedBatch {
        self.next_bytes().1
    }
}

fn ingest(c: &mut Criterion) {
    let mut stream = Stream::new();
    let (bytes, _) = stream.next_bytes();
    let bytes = [bytes];
    let dict = stream.dict.clone();
    let reader = BatchReader::default();
    let mut group = c.benchmark_group("collector_ingest");
    group.throughput(Throughput::Elements(BATCH as u64));
    // What a handler and the committer do before the store: decode,
    // validate, extend the producer's dictionary, check every reference.
    group.bench_function("decode_validate", |b| {
        let mut d = dict.clone();
        b.iter(|| {
            let batch = reader.decode(black_box(&bytes[0])).unwrap();
            let mark = d.mark();
            d.apply(&batch, reader.limits()).unwrap();
            batch.check_references(&d).unwrap();
            d.rollback(mark);
            black_box(batch.len())
        })
    });
    // Plus resolving every row into the table's shape.
    group.bench_function("decode_validate_resolve", |b| {
        let mut d = dict.clone();
        b.iter(|| {
            let batch = reader.decode(black_box(&bytes[0])).unwrap();
            d.apply(&batch, reader.limits()).unwrap();
            let instance = batch.instance_id_string();
            let n: usize = batch
                .rows(&d)
                .unwrap()
                .map(|r| {
                    let v = RowView::filter(r, &instance, batch.sequence);
                    v.groups.joined().map_or(0, |g| g.len()) + usize::from(v.row.status.is_some())
                })
                .sum();
            black_box(n)
        })
    });
    group.finish();
}

fn commit_one<'a>(batch: &'a DecodedBatch, dict: &'a Dictionary) -> Commit<'a> {
    commit_group(std::slice::from_ref(batch), dict)
}

fn stores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut stream = Stream::new();

    let dir = tempfile::tempdir().unwrap();
    let url = StoreUrl::Sqlite(dir.path().join("bench.sqlite"));
    let mut sqlite = rt.block_on(Store::open(&url)).unwrap();
    rt.block_on(sqlite.migrate()).unwrap();
    let mut group = c.benchmark_group("collector_commit");
    group.throughput(Throughput::Elements(BATCH as u64));
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    // Under load the committer puts up to 64 queued batches in one
    // transaction; 16 is a moderate load.
    group.throughput(Throughput::Elements(16 * BATCH as u64));
    group.bench_function("sqlite_16_batches_per_commit", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let fresh: Vec<DecodedBatch> = (0..16).map(|_| stream.next()).collect();
                let commit = commit_group(&fresh, &stream.dict);
                let t = Instant::now();
                let report = rt.block_on(sqlite.commit(&commit)).unwrap();
                spent += t.elapsed();
                assert_eq!(report.inserted, vec![true; 16]);
            }
            spent
        })
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("sqlite", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let batch = stream.next();
                let t = Instant::now();
                let report = rt
                    .block_on(sqlite.commit(&commit_one(&batch, &stream.dict)))
                    .unwrap();
                spent += t.elapsed();
                assert_eq!(report.inserted, vec![true]);
            }
            spent
        })
    });

    let Ok(server) = std::env::var("KONG_LOOKER_TEST_POSTGRES") else {
        eprintln!(
            "KONG_LOOKER_TEST_POSTGRES is not set: skipping the PostgreSQL figures \
             (run `make bench`, which starts a throwaway server)"
        );
        group.finish();
        return;
    };
    let db = format!("kl_bench_{}", std::process::id());
    let pg_url = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        format!("{}/{db}", server.rsplit_once('/').unwrap().0)
    });
    let mut pg = rt
        .block_on(Store::open(&StoreUrl::Postgres(pg_url.clone())))
        .unwrap();
    rt.block_on(pg.migrate()).unwrap();
    let (raw, conn) = rt
        .block_on(tokio_postgres::connect(&pg_url, tokio_postgres::NoTls))
        .unwrap();
    rt.spawn(conn);
    let mut raw = raw;
    let copy_sql = format!(
        "COPY kong_looker_requests ({}) FROM STDIN (FORMAT binary)",
        REQUEST_COLUMNS.join(", ")
    );

    // The same rows through a bare COPY in one transaction: the floor the
    // collector is measured against.
    let raw_copy = |raw: &mut tokio_postgres::Client, batch: &DecodedBatch, dict: &Dictionary| {
        rt.block_on(async {
            let tx = raw.transaction().await.unwrap();
            let sink = tx.copy_in(&copy_sql).await.unwrap();
            let mut w = pin!(tokio_postgres::binary_copy::BinaryCopyInWriter::new(
                sink,
                &postgres::TYPES
            ));
            let instance = batch.instance_id_string();
            for r in batch.rows(dict).unwrap() {
                let v = RowView::filter(r, &instance, batch.sequence);
                postgres::write_row(w.as_mut(), &v).await.unwrap();
            }
            w.finish().await.unwrap();
            tx.commit().await.unwrap();
        })
    };

    // Side by side in alternating blocks, fastest batch of each, so that
    // the ratio survives this machine's drift.
    let (mut ours, mut bare) = (f64::MAX, f64::MAX);
    for _ in 0..12 {
        for _ in 0..5 {
            let batch = stream.next();
            let t = Instant::now();
            rt.block_on(pg.commit(&commit_one(&batch, &stream.dict)))
                .unwrap();
            ours = ours.min(t.elapsed().as_secs_f64());
        }
        for _ in 0..5 {
            let batch = stream.next();
            let t = Instant::now();
            raw_copy(&mut raw, &batch, &stream.dict);
            bare = bare.min(t.elapsed().as_secs_f64());
        }
    }
    eprintln!(
        "postgres, fastest of 60 batches of {BATCH} each, in alternating blocks: \
         collector {:.0} rows/s, plain binary COPY {:.0} rows/s: {:.2} of COPY",
        BATCH as f64 / ours,
        BATCH as f64 / bare,
        bare / ours
    );

    group.bench_function("postgres", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let batch = stream.next();
                let t = Instant::now();
                rt.block_on(pg.commit(&commit_one(&batch, &stream.dict)))
                    .unwrap();
                spent += t.elapsed();
            }
            spent
        })
    });
    group.bench_function("postgres_plain_copy", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let batch = stream.next();
                let t = Instant::now();
                raw_copy(&mut raw, &batch, &stream.dict);
                spent += t.elapsed();
            }
            spent
        })
    });
    group.finish();
}

/// Batches per ClickHouse group: what the committer gathers in its second
/// under load (200,000 rows).
const CH_GROUP: usize = 200;

/// ClickHouse: the collector committing groups of batches, side by side in
/// alternating blocks with `clickhouse-client` inserting the very rows the
/// collector wrote (read back as RowBinary) into a second database on the
/// same server.
fn clickhouse(c: &mut Criterion) {
    let (Ok(http), Ok(tcp)) = (
        std::env::var("KONG_LOOKER_TEST_CLICKHOUSE"),
        std::env::var("KONG_LOOKER_TEST_CLICKHOUSE_TCP"),
    ) else {
        eprintln!(
            "KONG_LOOKER_TEST_CLICKHOUSE is not set: skipping the ClickHouse figures \
             (run `make bench`, which starts a throwaway server)"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let endpoint = http
        .strip_prefix("http://default@")
        .and_then(|h| h.split('/').next())
        .map(|h| format!("http://{h}"))
        .expect("http://default@HOST:PORT/DB");
    let query = |sql: &str| -> Vec<u8> {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--fail-with-body",
                &format!("{endpoint}/"),
                "--data-binary",
                sql,
            ])
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        out.stdout
    };
    let pid = std::process::id();
    let (ours_db, theirs_db) = (
        format!("kl_bench_ch_{pid}"),
        format!("kl_bench_client_{pid}"),
    );
    let mut stores = Vec::new();
    for db in [&ours_db, &theirs_db] {
        query(&format!("CREATE DATABASE {db}"));
        let url: StoreUrl = format!(
            "clickhouse://default@{}/{db}",
            endpoint.trim_start_matches("http://")
        )
        .parse()
        .unwrap();
        let mut store = rt.block_on(Store::open(&url)).unwrap();
        rt.block_on(store.migrate()).unwrap();
        stores.push(store);
    }
    let mut ours = stores.remove(0);
    let mut stream = Stream::new();
    let group_of = |stream: &mut Stream| -> Vec<DecodedBatch> {
        (0..CH_GROUP).map(|_| stream.next()).collect()
    };
    let rows_file = std::env::temp_dir().join(format!("kl_bench_rows_{pid}.bin"));
    let (mut ours_best, mut client_best) = (f64::MAX, f64::MAX);
    let rounds = 4;
    for round in 0..rounds {
        let batches = group_of(&mut stream);
        let t = Instant::now();
        let report = rt
            .block_on(ours.commit(&commit_group(&batches, &stream.dict)))
            .unwrap();
        ours_best = ours_best.min(t.elapsed().as_secs_f64());
        assert!(report.inserted.iter().all(|i| *i));
        // The rows this group wrote, exactly, as RowBinary.
        let first = batches[0].sequence;
        let last = batches[CH_GROUP - 1].sequence;
        let bytes = query(&format!(
            "SELECT * FROM {ours_db}.kong_looker_request_rows \
             WHERE batch_sequence BETWEEN {first} AND {last} FORMAT RowBinary"
        ));
        std::fs::write(&rows_file, &bytes).unwrap();
        let (host, port) = tcp.rsplit_once(':').unwrap();
        let t = Instant::now();
        let status = std::process::Command::new("clickhouse-client")
            .args([
                "--host",
                host,
                "--port",
                port,
                "--database",
                &theirs_db,
                "--query",
            ])
            .arg("INSERT INTO kong_looker_request_rows FORMAT RowBinary")
            .stdin(std::fs::File::open(&rows_file).unwrap())
            .status()
            .expect("clickhouse-client (apt-get install clickhouse-client)");
        client_best = client_best.min(t.elapsed().as_secs_f64());
        assert!(status.success());
        eprintln!(
            "clickhouse round {round}: {} bytes of RowBinary for {} rows",
            bytes.len(),
            CH_GROUP * BATCH
        );
    }
    let _ = std::fs::remove_file(&rows_file);
    let rows = (CH_GROUP * BATCH) as f64;
    let version = String::from_utf8_lossy(&query("SELECT version()"))
        .trim()
        .to_owned();
    eprintln!(
        "clickhouse {version}, fastest of {rounds} groups of {} rows each, in alternating blocks: \
         collector {:.0} rows/s, clickhouse-client RowBinary {:.0} rows/s: {:.2} of the client",
        CH_GROUP * BATCH,
        rows / ours_best,
        rows / client_best,
        client_best / ours_best
    );
    let mut group = c.benchmark_group("collector_clickhouse");
    group.throughput(Throughput::Elements((CH_GROUP * BATCH) as u64));
    group.sample_size(10);
    group.bench_function("clickhouse_group", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let batches = group_of(&mut stream);
                let t = Instant::now();
                rt.block_on(ours.commit(&commit_group(&batches, &stream.dict)))
                    .unwrap();
                spent += t.elapsed();
            }
            spent
        })
    });
    group.finish();
    for db in [&ours_db, &theirs_db] {
        query(&format!("DROP DATABASE {db}"));
    }
}

/// One commit of several batches, as the committer groups them.
fn commit_group<'a>(batches: &'a [DecodedBatch], dict: &'a Dictionary) -> Commit<'a> {
    Commit {
        batches: batches
            .iter()
            .map(|batch| BatchCommit {
                batch,
                dictionary: dict,
                instance_id: batch.instance_id_string(),
                definitions: None,
                received_at_ms: 0,
            })
            .collect(),
        log_rows: Vec::new(),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = ingest, stores, clickhouse
}
criterion_main!(benches);
