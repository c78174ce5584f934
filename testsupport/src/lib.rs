//! What kong-looker's tests, benches and demo share, as an ordinary
//! dev-dependency: nothing here ships.
//!
//! # Layout
//! - [`filter`]: the built `dist/kong_looker.wasm` (refused when older than
//!   its sources), its config and its metrics in the test host.
//! - [`collected`]: what the test host's sink received, decoded into rows
//!   the way one collector would.
//! - [`traffic`]: the reference mix as Kong shows it to a filter: headers,
//!   credentials and properties, with the row each request must become.
//! - [`http_log`]: Kong's http-log entry (`kong.log.serialize()`) for a
//!   reference-mix request: the baseline the wire format is compared with.
//! - [`native`]: the same requests lent to the capture core by a native
//!   stand-in host, for the capture bench and the allocation test.
//! - [`snapshot`]: the log snapshot Kong keeps for a request, which an
//!   external plugin server reads.
//! - [`collector`]: the real `kong-looker-collector` as a child process, and
//!   plain HTTP calls to it.
//! - [`stores`]: a fresh SQLite file or PostgreSQL database per test, read
//!   back with its own client.
//! - [`socket`]: a server's unix socket connected to the moment it
//!   appears.
//! - [`stored`]: what the table must hold for an expected row, column by
//!   column, and the sums that close the books.
//!
//! Tests may panic: a failure here is a failed test.

pub mod collected;
pub mod collector;
pub mod filter;
pub mod http_log;
pub mod native;
pub mod snapshot;
pub mod socket;
pub mod stored;
pub mod stores;
pub mod traffic;

pub use collected::Collected;
pub use collector::{Collector, Reply, get, now_ms, post};
pub use filter::{config, filter, filter_metrics, fresh_wasm};
pub use kong_looker_proto::OwnedRow;
pub use stores::TestStore;

/// The workspace's root folder.
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The newest modification time of any file below `dir`.
pub fn newest_file(dir: &std::path::Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_file(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(t);
    }
    newest
}
