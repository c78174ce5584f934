//! The three stores agree with each other and with the Looker contract,
//! and the `migrate` and `stats` commands work on each.

mod support;

use kong_looker_collector::http_log::{LogRow, Mapper};
use kong_looker_collector::row::REQUEST_COLUMNS;
use kong_looker_collector::store::{BatchCommit, Commit, CommitReport, Store};
use kong_looker_core::capture::privacy::AddressMode;
use kong_looker_proto::builder::Producer;
use kong_looker_proto::v1::{Method, ResponseSource};
use kong_looker_proto::{
    AiRef, BatchBuilder, BatchReader, BuilderOptions, DecodedBatch, Dictionary, Record,
};
use support::*;

fn columns(store: &TestStore) -> Vec<String> {
    let sql = match store {
        TestStore::Sqlite(_) => {
            "SELECT name FROM pragma_table_info('kong_looker_requests') ORDER BY cid"
        }
        TestStore::Postgres(_) => {
            "SELECT column_name FROM information_schema.columns \
             WHERE table_name = 'kong_looker_requests' ORDER BY ordinal_position"
        }
        TestStore::ClickHouse(_) => {
            "SELECT name FROM system.columns \
             WHERE database = currentDatabase() AND table = 'kong_looker_requests'"
        }
    };
    store
        .rows(sql)
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

fn collector(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn every_store_has_the_contract_columns_in_order() {
    let stores = [
        TestStore::sqlite(),
        TestStore::postgres(),
        TestStore::clickhouse(),
    ];
    let want: Vec<String> = REQUEST_COLUMNS.iter().map(|c| c.to_string()).collect();
    for store in &stores {
        let (ok, out) = collector(&["migrate", "--store", &store.url()]);
        assert!(ok, "{out}");
        assert!(out.contains("applied 0001_tables.sql"), "{out}");
        assert_eq!(columns(store), want, "{}", store.kind());
    }
}

fn migrate_twice(store: TestStore) {
    let url = store.url();
    let (ok, out) = collector(&["migrate", "--store", &url]);
    assert!(ok, "{out}");
    let applied = out.matches("applied 0").count() as i64;
    assert!(applied >= 1, "{out}");
    let (ok, out) = collector(&["migrate", "--store", &url]);
    assert!(ok, "{out}");
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_migrations"),
        applied
    );
    let (ok, out) = collector(&["stats", "--store", &url]);
    assert!(ok, "{out}");
    assert!(out.contains("rows             0"), "{out}");
    assert!(out.contains("newest commit    none"), "{out}");
}
on_every_store!(
    migrate_is_idempotent_and_stats_reads_an_empty_store,
    migrate_twice
);

#[test]
fn an_unreachable_store_is_named() {
    let (ok, out) = collector(&["stats", "--store", "postgres://nobody@127.0.0.1:1/none"]);
    assert!(!ok);
    assert!(out.contains("postgres"), "{out}");
    assert!(
        out.contains("Connection refused") || out.contains("connect"),
        "{out}"
    );
    let (ok, out) = collector(&["stats", "--store", "mysql://x"]);
    assert!(!ok);
    assert!(out.contains("use sqlite:PATH, postgres://"), "{out}");
    assert!(out.contains("or clickhouse://"), "{out}");
}

/// A SQLite file written by a collector before migration 2 (requests as
/// wide text rows) keeps every row, value for value, through the view.
#[test]
fn sqlite_rows_survive_the_move_to_narrow_rows() {
    let store = TestStore::sqlite();
    let TestStore::Sqlite(dir) = &store else {
        unreachable!()
    };
    let conn = rusqlite::Connection::open(dir.path().join("kong_looker.sqlite")).unwrap();
    conn.execute_batch(include_str!(
        "../src/store/migrations/sqlite/0001_tables.sql"
    ))
    .unwrap();
    conn.execute_batch(
        "CREATE TABLE kong_looker_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
         INSERT INTO kong_looker_migrations VALUES (1, '0001_tables.sql', '2026-11-28T00:00:00.000Z');",
    )
    .unwrap();
    // The columns migration 1 created: the AI ones came with migration 4.
    let v1: Vec<&str> = REQUEST_COLUMNS
        .iter()
        .copied()
        .filter(|c| !c.starts_with("ai_"))
        .collect();
    let cols = v1.join(", ");
    let marks = vec!["?"; v1.len()].join(", ");
    let mut insert = conn
        .prepare(&format!(
            "INSERT INTO kong_looker_requests ({cols}) VALUES ({marks})"
        ))
        .unwrap();
    use rusqlite::types::Value::{Integer as I, Null as N, Real as R, Text as T};
    let t = |s: &str| T(s.to_owned());
    let filter_row = vec![
        t("2026-11-28T23:59:59.999Z"),
        t("payments"),
        t("5f1c0a2e-0000-4000-8000-000000000001"),
        t("orders-route"),
        t("5f1c0a2e-0000-4000-8000-000000000002"),
        t("orders"),
        t("GET"),
        t("api.example.com"),
        t("/v1/orders/{id}"),
        I(200),
        t("upstream"),
        I(12_345),
        I(10_000),
        I(800),
        I(4_000),
        t("jwt"),
        t("verified"),
        I(0),
        t("c-1"),
        t("alice"),
        t("cust-ü"),
        t("cred-1"),
        t("gold,silver"),
        t("alice@example.com"),
        t("https://idp.example.com"),
        t("web-app"),
        t("203.0.113.0/24"),
        t("sdk"),
        t("python-requests"),
        t("0af7651916cd43dd8448eb211c80319c"),
        N,
        R(4.0),
        t("filter"),
        t("9b2e51c4-4b8e-4bb5-9a55-2d6f1f0f7e01"),
        I(17),
    ];
    // The same texts again in other columns, and an http-log-only row.
    let log_row = vec![
        t("1970-01-01T00:00:00.000Z"),
        N,
        N,
        N,
        N,
        N,
        t("POST"),
        t("orders"),
        t("/v1/orders"),
        I(401),
        t("kong"),
        I(1),
        N,
        I(0),
        I(0),
        N,
        N,
        I(1),
        N,
        N,
        N,
        N,
        N,
        N,
        N,
        N,
        N,
        N,
        N,
        t("11111111111111111111111111111111"),
        t("4bf92f3577b34da6a3ce929d0e0e4736"),
        R(1.0),
        t("http_log"),
        N,
        N,
    ];
    for row in [&filter_row, &log_row] {
        insert
            .execute(rusqlite::params_from_iter(row.iter()))
            .unwrap();
    }
    let before = store.rows(&format!(
        "SELECT {cols} FROM kong_looker_requests ORDER BY rowid"
    ));
    drop(insert);
    drop(conn);

    let (ok, out) = collector(&["migrate", "--store", &store.url()]);
    assert!(ok, "{out}");
    assert!(out.contains("applied 0002_narrow_rows.sql"), "{out}");
    let after = store.rows(&format!(
        "SELECT {cols} FROM kong_looker_requests ORDER BY started_at DESC"
    ));
    assert_eq!(after, before);
    assert_eq!(columns(&store), REQUEST_COLUMNS.map(String::from));
    // Rows from before AI figures existed have none.
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_requests WHERE ai_calls IS NULL"),
        2
    );
    // "orders" is one text, used by two columns.
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_text WHERE value = 'orders'"),
        1
    );
    let (ok, out) = collector(&["stats", "--store", &store.url()]);
    assert!(ok, "{out}");
    assert!(out.contains("rows             2"), "{out}");
    assert!(
        out.contains("(1 from the filter, 1 from http-log only)"),
        "{out}"
    );
}

/// A store written before the batches table had `state` (SQLite up to
/// migration 2, PostgreSQL migration 1): every batch row it holds is a
/// committed batch, and `stats` counts it so.
fn batches_gain_their_state(store: TestStore) {
    let older: &[&str] = match &store {
        TestStore::Sqlite(_) => &[
            include_str!("../src/store/migrations/sqlite/0001_tables.sql"),
            include_str!("../src/store/migrations/sqlite/0002_narrow_rows.sql"),
        ],
        TestStore::Postgres(_) => &[include_str!(
            "../src/store/migrations/postgres/0001_tables.sql"
        )],
        TestStore::ClickHouse(_) => unreachable!("ClickHouse began with the state column"),
    };
    let mut setup = older.join("\n");
    setup.push_str(
        "CREATE TABLE kong_looker_migrations (
             version BIGINT PRIMARY KEY, name TEXT NOT NULL,
             applied_at TEXT NOT NULL DEFAULT '2026-11-28');",
    );
    for (i, _) in older.iter().enumerate() {
        setup.push_str(&format!(
            "INSERT INTO kong_looker_migrations VALUES ({}, 'old', '2026-11-28');",
            i + 1
        ));
    }
    // Sequences 1 and 3 of one producer: 2 is missing.
    for sequence in [1, 3] {
        setup.push_str(&format!(
            "INSERT INTO kong_looker_batches VALUES ('p', {sequence}, NULL, NULL, NULL, 0, 5, \
             0, 0, 0, 0, NULL, '2026-11-28T00:00:00.000Z', '2026-11-28T00:00:00.000Z');"
        ));
    }
    match &store {
        TestStore::Sqlite(dir) => {
            rusqlite::Connection::open(dir.path().join("kong_looker.sqlite"))
                .unwrap()
                .execute_batch(&setup)
                .unwrap();
        }
        TestStore::Postgres(_) => store.execute(&setup),
        TestStore::ClickHouse(_) => unreachable!(),
    }
    let (ok, out) = collector(&["migrate", "--store", &store.url()]);
    assert!(ok, "{out}");
    assert!(out.contains("applied 000"), "{out}");
    assert!(out.contains("_abandoned_batches.sql"), "{out}");
    assert_eq!(
        store.rows("SELECT sequence, state FROM kong_looker_batches ORDER BY sequence"),
        [["1", "committed"], ["3", "committed"]].map(|r| r.map(|v| Some(v.to_string())).to_vec())
    );
    let (ok, out) = collector(&["stats", "--store", &store.url()]);
    assert!(ok, "{out}");
    assert!(out.contains("batches          2 from 1 producers"), "{out}");
    assert!(
        out.contains("missing batches  1 (besides 0 their producers reported abandoning)"),
        "{out}"
    );
}
on_both_stores!(
    existing_batches_are_committed_after_the_migration,
    batches_gain_their_state
);

/// A filter batch of one record for request `id`, decoded as the collector
/// holds it.
fn filter_batch(builder: &mut BatchBuilder, record: Record<'_>) -> (DecodedBatch, Dictionary) {
    builder.append(&record).unwrap();
    let sealed = builder.seal(now_ms(), &Default::default());
    BatchReader::default()
        .decode_standalone(&sealed.bytes)
        .unwrap()
}

/// What a request answered in nginx's rewrite phase gives the filter: no
/// route, service, method, host, path, identity or agent.
fn thin(id: &str) -> Record<'_> {
    Record {
        started_at_ms: now_ms() - 1000,
        status: 400,
        source: ResponseSource::Kong,
        latency_total_us: 1000,
        request_id: id,
        ..Record::default()
    }
}

/// Method and path only: as much as a bare http-log entry knows.
fn method_and_path(id: &str) -> Record<'_> {
    Record {
        method: Method::Get,
        path: "/x",
        ..thin(id)
    }
}

fn log_row(json: serde_json::Value) -> LogRow {
    Mapper::new(AddressMode::Keep, None)
        .map(&serde_json::to_vec(&json).unwrap())
        .unwrap()
        .remove(0)
}

/// Kong's sample entry: method, host, route, service, agent and path known.
fn full_log(id: &str) -> LogRow {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("data/kong_sample.json")).unwrap();
    v["request"]["id"] = id.into();
    log_row(v)
}

/// Method and path known, nothing else.
fn bare_log(id: &str) -> LogRow {
    log_row(serde_json::json!({
        "started_at": now_ms() - 1000, "request": {"id": id, "method": "GET", "uri": "/x"},
        "response": {"status": 400}, "latencies": {"request": 1}, "source": "kong"
    }))
}

async fn commit(
    store: &mut Store,
    batches: &[&(DecodedBatch, Dictionary)],
    logs: &[&LogRow],
) -> CommitReport {
    store
        .commit(&Commit {
            batches: batches
                .iter()
                .map(|(batch, dictionary)| BatchCommit {
                    batch,
                    dictionary,
                    instance_id: batch.instance_id_string(),
                    definitions: None,
                    received_at_ms: now_ms(),
                })
                .collect(),
            log_rows: logs.to_vec(),
        })
        .await
        .unwrap()
}

/// When the filter and http-log both send a request, the row that knows
/// more of what it was wins, in either arrival order and in one commit; on
/// a tie the filter's row wins.
fn richer_row_wins(test_store: TestStore) {
    let id = |n: u32| format!("{n:032x}");
    let ids: Vec<String> = (1..=6).map(id).collect();
    let mut builder = BatchBuilder::new(
        &Producer {
            instance_id: [31; 16],
            ..Producer::default()
        },
        BuilderOptions::default(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut store = Store::open(&test_store.url().parse().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        // 1: a thin filter row, then Kong's full entry: the entry wins.
        let thin_1 = filter_batch(&mut builder, thin(&ids[0]));
        assert_eq!(commit(&mut store, &[&thin_1], &[]).await.inserted, [true]);
        let report = commit(&mut store, &[], &[&full_log(&ids[0])]).await;
        assert_eq!(report.log_rows_landed, 1, "it replaced the filter's row");
        // 2: the full entry, then the thin filter row: the entry stays.
        assert_eq!(
            commit(&mut store, &[], &[&full_log(&ids[1])])
                .await
                .log_rows_landed,
            1
        );
        let thin_2 = filter_batch(&mut builder, thin(&ids[1]));
        assert_eq!(commit(&mut store, &[&thin_2], &[]).await.inserted, [true]);
        // 3: both in one commit: the entry wins.
        let thin_3 = filter_batch(&mut builder, thin(&ids[2]));
        let report = commit(&mut store, &[&thin_3], &[&full_log(&ids[2])]).await;
        assert_eq!((report.inserted, report.log_rows_landed), (vec![true], 1));
        // 4 and 5: a tie (method and path on both sides), either order:
        // the filter's row wins.
        let tie_4 = filter_batch(&mut builder, method_and_path(&ids[3]));
        commit(&mut store, &[&tie_4], &[]).await;
        let report = commit(&mut store, &[], &[&bare_log(&ids[3])]).await;
        assert_eq!(report.log_rows_landed, 0, "a duplicate of the filter's row");
        commit(&mut store, &[], &[&bare_log(&ids[4])]).await;
        let tie_5 = filter_batch(&mut builder, method_and_path(&ids[4]));
        commit(&mut store, &[&tie_5], &[]).await;
        // 6: a tie in one commit: the filter's row.
        let tie_6 = filter_batch(&mut builder, method_and_path(&ids[5]));
        let report = commit(&mut store, &[&tie_6], &[&bare_log(&ids[5])]).await;
        assert_eq!(report.log_rows_landed, 0);
        // The losing path's copy never replaces a winner of its own path.
        let report = commit(&mut store, &[], &[&full_log(&ids[1])]).await;
        assert_eq!(report.log_rows_landed, 0, "a retry of http-log's row");
    });
    let rows = test_store.rows(
        "SELECT request_id, origin, route_name, status FROM kong_looker_requests \
         ORDER BY request_id",
    );
    let want = [
        (0, "http_log", Some("example_route"), "200"),
        (1, "http_log", Some("example_route"), "200"),
        (2, "http_log", Some("example_route"), "200"),
        (3, "filter", None, "400"),
        (4, "filter", None, "400"),
        (5, "filter", None, "400"),
    ]
    .map(|(i, origin, route, status)| {
        vec![
            Some(ids[i].clone()),
            Some(origin.to_owned()),
            route.map(str::to_owned),
            Some(status.to_owned()),
        ]
    });
    assert_eq!(rows, want);
}
on_every_store!(the_richer_of_both_paths_rows_wins, richer_row_wins);

/// A bare http-log entry for request `id` with Kong's AI section.
fn ai_log(id: &str) -> LogRow {
    log_row(serde_json::json!({
        "started_at": now_ms() - 1000, "request": {"id": id, "method": "GET", "uri": "/x"},
        "response": {"status": 400}, "latencies": {"request": 1}, "source": "kong",
        "ai": {"proxy": {"meta": {"provider_name": "openai", "request_model": "gpt-4o"},
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}}
    }))
}

/// The filter sees no `ai` section: when its row wins over http-log's for
/// an AI request, in either arrival order, the stored row still carries
/// http-log's AI figures. (On ClickHouse a row is kept whole, and the one
/// with more LLM calls' figures wins: http-log's, here.)
fn ai_figures_survive(test_store: TestStore) {
    let ids: Vec<String> = (7..=8u32).map(|n| format!("{n:032x}")).collect();
    let mut builder = BatchBuilder::new(
        &Producer {
            instance_id: [32; 16],
            ..Producer::default()
        },
        BuilderOptions::default(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut store = Store::open(&test_store.url().parse().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        // The filter's row first (it wins the tie), with what the model
        // header gave it (no calls added), then http-log's with the usage.
        let header = AiRef {
            provider: "openai",
            request_model: "gpt-4o",
            ..AiRef::default()
        };
        let first = filter_batch(
            &mut builder,
            Record {
                ai: Some(&header),
                ..method_and_path(&ids[0])
            },
        );
        commit(&mut store, &[&first], &[]).await;
        commit(&mut store, &[], &[&ai_log(&ids[0])]).await;
        // http-log's first, then the filter's, which replaces it.
        commit(&mut store, &[], &[&ai_log(&ids[1])]).await;
        let second = filter_batch(&mut builder, method_and_path(&ids[1]));
        commit(&mut store, &[&second], &[]).await;
        // A retry of http-log's entry changes nothing.
        commit(&mut store, &[], &[&ai_log(&ids[0])]).await;
    });
    let origin = match test_store {
        TestStore::ClickHouse(_) => "http_log",
        _ => "filter",
    };
    let rows = test_store.rows(
        "SELECT request_id, origin, path, ai_provider, ai_total_tokens, ai_calls \
         FROM kong_looker_requests ORDER BY request_id",
    );
    let s = |v: &str| Some(v.to_owned());
    let want: Vec<Vec<Option<String>>> = ids
        .iter()
        .map(|id| vec![s(id), s(origin), s("/x"), s("openai"), s("15"), s("1")])
        .collect();
    assert_eq!(rows, want);
}
on_every_store!(ai_figures_survive_the_filters_win, ai_figures_survive);
