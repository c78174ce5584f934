//! The two stores agree with each other and with the Looker contract, and
//! the `migrate` and `stats` commands work on both.

mod support;

use kong_looker_collector::row::REQUEST_COLUMNS;
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
fn both_stores_have_the_contract_columns_in_order() {
    let (sqlite, postgres) = (TestStore::sqlite(), TestStore::postgres());
    for store in [&sqlite, &postgres] {
        let (ok, out) = collector(&["migrate", "--store", &store.url()]);
        assert!(ok, "{out}");
        assert!(out.contains("applied 0001_tables.sql"), "{out}");
    }
    let want: Vec<String> = REQUEST_COLUMNS.iter().map(|c| c.to_string()).collect();
    assert_eq!(columns(&sqlite), want);
    assert_eq!(columns(&postgres), want);
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
on_both_stores!(
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
    assert!(out.contains("use sqlite:PATH or postgres://"), "{out}");
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
    let cols = REQUEST_COLUMNS.join(", ");
    let marks = vec!["?"; REQUEST_COLUMNS.len()].join(", ");
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
