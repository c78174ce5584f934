//! Shared by the filter's integration tests: the real `dist/kong_looker.wasm`,
//! a reader that turns what the sink received into rows, and the
//! translation of reference-mix requests into what Kong would show the
//! filter.
#![allow(dead_code)]

pub mod traffic;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kong_looker_proto::reader::DecodedBatch;
use kong_looker_proto::wire;
use kong_looker_proto::{BatchReader, Dictionary};
use kong_looker_testkit::{Filter, Received};

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
    // The collector's end-to-end tests include this module from collector/.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = if manifest.join("kong_looker.meta.json").exists() {
        manifest
    } else {
        manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
    };
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

fn newest_file(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let t = if path.is_dir() {
            newest_file(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(t);
    }
    newest
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

/// One row, owned, with every column as the warehouse will store it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedRow {
    pub started_at_ms: i64,
    pub route_id: Option<String>,
    pub route_name: Option<String>,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    pub workspace: Option<String>,
    pub method: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    pub response_source: Option<&'static str>,
    pub latency_total_us: u64,
    pub latency_upstream_us: Option<u64>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub auth_method: Option<&'static str>,
    pub trust: Option<&'static str>,
    pub anonymous: bool,
    pub consumer_id: Option<String>,
    pub consumer_username: Option<String>,
    pub consumer_custom_id: Option<String>,
    pub credential: Option<String>,
    pub consumer_groups: Vec<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_address: Option<String>,
    pub agent_category: Option<&'static str>,
    pub agent_name: Option<String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub sample_weight: f32,
}

/// What a collector would make of the batches the sink received.
#[derive(Default)]
pub struct Collected {
    pub batches: Vec<DecodedBatch>,
    pub rows: Vec<OwnedRow>,
}

impl Collected {
    /// Decodes every `POST /v1/batches` in order, as one collector would:
    /// one dictionary per producer and generation, duplicates skipped.
    pub fn from(received: &[Received]) -> Collected {
        let reader = BatchReader::default();
        let mut dicts: HashMap<([u8; 16], u32), Dictionary> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut out = Collected::default();
        for r in received {
            assert_eq!(
                (r.method.as_str(), r.path.as_str()),
                ("POST", wire::BATCHES_PATH)
            );
            assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
            let batch = reader
                .decode(&r.body)
                .expect("the filter sends valid batches");
            if !seen.insert(batch.key()) {
                continue;
            }
            let dict = dicts
                .entry((batch.instance_id, batch.generation))
                .or_insert_with(|| Dictionary::new(batch.generation));
            dict.apply(&batch, reader.limits())
                .expect("definitions apply");
            out.rows
                .extend(batch.rows(dict).expect("references resolve").map(|r| {
                    let s = |v: Option<&str>| v.map(str::to_string);
                    OwnedRow {
                        started_at_ms: r.started_at_ms,
                        route_id: s(r.route_id),
                        route_name: s(r.route_name),
                        service_id: s(r.service_id),
                        service_name: s(r.service_name),
                        workspace: s(r.workspace),
                        method: s(r.method),
                        host: s(r.host),
                        path: s(r.path),
                        status: r.status,
                        response_source: r.response_source,
                        latency_total_us: r.latency_total_us,
                        latency_upstream_us: r.latency_upstream_us,
                        request_bytes: r.request_bytes,
                        response_bytes: r.response_bytes,
                        auth_method: r.auth_method,
                        trust: r.trust,
                        anonymous: r.anonymous,
                        consumer_id: s(r.consumer_id),
                        consumer_username: s(r.consumer_username),
                        consumer_custom_id: s(r.consumer_custom_id),
                        credential: s(r.credential),
                        consumer_groups: r.consumer_groups.iter().map(str::to_string).collect(),
                        subject: s(r.subject),
                        issuer: s(r.issuer),
                        client_id: s(r.client_id),
                        client_address: s(r.client_address),
                        agent_category: r.agent_category,
                        agent_name: s(r.agent_name),
                        request_id: r.request_id.map(|i| i.to_string()),
                        trace_id: r.trace_id.map(|i| i.to_string()),
                        sample_weight: r.sample_weight,
                    }
                }));
            out.batches.push(batch);
        }
        out
    }
}
