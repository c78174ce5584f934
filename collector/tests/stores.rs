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
    assert!(collector(&["migrate", "--store", &url]).0);
    let (ok, out) = collector(&["migrate", "--store", &url]);
    assert!(ok, "{out}");
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_migrations"),
        1
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
