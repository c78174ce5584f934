//! PostgreSQL restarted under load. In a test binary of its own, because
//! the restart would break the other tests' connections to the same server.

mod support;

use support::*;

#[test]
fn postgres_restarted_under_load_loses_and_duplicates_nothing() {
    let store = TestStore::postgres();
    let c = Collector::start(&store.url(), &[]);
    let failures = stream_through(c.addr, 30, 25, support::stores::restart_postgres);
    assert_eq!(
        store.count("SELECT count(*) FROM kong_looker_requests"),
        3 * 25 * 100
    );
    assert_eq!(
        store.count("SELECT count(DISTINCT request_id) FROM kong_looker_requests"),
        3 * 25 * 100
    );
    // The restart was felt: commits failed and were answered 503.
    assert!(failures > 0, "no delivery failed during the restart");
    assert!(c.metric("kong_looker_collector_rejected_total{reason=\"store_unavailable\"}") > 0.0);
    assert_eq!(c.metric("kong_looker_collector_store_up"), 1.0);
    assert_eq!(get(&c.url("/readyz")).0, 200);
}
