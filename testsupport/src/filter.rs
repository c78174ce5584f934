//! The filter under test: the real `dist/kong_looker.wasm` as `make build`
//! leaves it, its config, and its metrics in the test host.

use std::path::PathBuf;

use kong_looker_testkit::Filter;

use crate::{newest_file, workspace_root};

/// The filter as `make build` leaves it, refusing a build older than the
/// sources so that a test never passes against stale code. Compiled once
/// per test binary.
pub fn filter() -> Filter {
    static FILTER: std::sync::OnceLock<Filter> = std::sync::OnceLock::new();
    FILTER.get_or_init(load).clone()
}

fn load() -> Filter {
    Filter::load(fresh_wasm()).expect("dist/kong_looker.wasm loads")
}

/// `dist/kong_looker.wasm`, after checking that it is newer than every
/// source it is built from.
pub fn fresh_wasm() -> PathBuf {
    let root = workspace_root();
    let wasm = root.join("dist/kong_looker.wasm");
    let built = std::fs::metadata(&wasm)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} is missing: run `make build`", wasm.display()));
    for dir in ["src", "core/src", "proto/src", "proto/kong_looker"] {
        let newest = newest_file(&root.join(dir));
        assert!(
            newest <= built,
            "dist/kong_looker.wasm is older than {dir}/: run `make build`"
        );
    }
    wasm
}

/// The filter's `pw:kong_looker:*` metrics, summed over workers, by their
/// short names (`records_captured`, ...).
pub fn filter_metrics(kong: &kong_looker_testkit::Kong) -> std::collections::BTreeMap<String, u64> {
    kong.metrics()
        .into_iter()
        .filter_map(|(k, m)| {
            let name = k.strip_prefix("pw:kong_looker:")?.to_owned();
            Some((name, u64::try_from(m.value).unwrap_or(0)))
        })
        .collect()
}

/// A filter config sending to `collector`, flushing every 100 ms, with
/// `extra` merged in (a JSON object's members, without braces).
pub fn config(collector: &str, extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(r#"{{"collector":"{collector}","batch":{{"flush_interval_ms":100}}{sep}{extra}}}"#)
}
