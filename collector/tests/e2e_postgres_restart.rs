//! End to end with PostgreSQL restarted while the filter streams. In a
//! test binary of its own, because the restart would break the other
//! tests' connections to the same server.

mod pipeline;
mod support;

use std::time::Duration;

use pipeline::*;
use support::TestStore;

#[test]
fn postgres_restarted_mid_stream_costs_nothing() {
    let store = TestStore::postgres();
    let c = collector(&store);
    let (mut mix, start) = mix_for(3000, 21);
    let mut kong = kong(&chains(c.addr, None, ""), start);
    let mut expected = drive(&mut kong, &mut mix, 1000);
    // The restart overlaps the stream: commits fail and are answered 503
    // while the server is down, and the filter retries them.
    let restart = std::thread::spawn(support::stores::restart_postgres);
    expected.extend(drive(&mut kong, &mut mix, 2000));
    restart.join().unwrap();
    settle(&mut kong, Duration::from_secs(120));
    let books = reconcile(&kong, &store, &expected);
    assert_eq!((books.stored, books.dropped), (3000, 0));
    pinned(&store, &expected);
    assert_eq!(support::get(&c.url("/readyz")).0, 200);
}
