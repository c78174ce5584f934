//! ClickHouse killed (SIGKILL, as in a crash) and restarted under load. In a test binary of its own, because
//! the restart would fail the other tests' statements on the same server.

mod support;

use support::*;

/// The command `scripts/with-clickhouse` exports to restart its server.
const RESTART_ENV: &str = "KONG_LOOKER_TEST_CLICKHOUSE_RESTART";

#[test]
fn clickhouse_killed_and_restarted_under_load_loses_and_duplicates_nothing() {
    let store = TestStore::clickhouse();
    let restart = std::env::var(RESTART_ENV).unwrap_or_else(|_| {
        panic!("{RESTART_ENV} is not set; run the tests with `make test` (scripts/with-clickhouse)")
    });
    let c = Collector::start(&store.url(), &[]);
    let failures = stream_through(c.addr, 80, 40, || {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&restart)
            .status()
            .unwrap();
        assert!(status.success(), "{restart} failed");
    });
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_requests"),
        3 * 40 * 100
    );
    assert_eq!(
        store.count("SELECT count(DISTINCT request_id) FROM kong_looker_requests"),
        3 * 40 * 100
    );
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_batches"),
        3 * 40
    );
    // The restart was felt: commits failed and were answered 503.
    assert!(failures > 0, "no delivery failed during the restart");
    assert!(c.metric("kong_looker_collector_rejected_total{reason=\"store_unavailable\"}") > 0.0);
    assert_eq!(c.metric("kong_looker_collector_store_up"), 1.0);
    assert_eq!(get(&c.url("/readyz")).0, 200);
}
