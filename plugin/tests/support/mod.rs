//! What the plugin server's tests share: the real binary started as Kong
//! starts it, the real collector on SQLite, and the reference mix turned
//! into the log snapshots Kong would keep for it (through the filter
//! tests' own mapping, `kong_looker_testsupport::traffic`, so that both
//! hosts are checked against the same expected rows).
#![allow(dead_code)]

use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kong_looker_proto::mix;
use kong_looker_testkit::plugin_server::LogSnapshot;
use kong_looker_testkit::{Profile, Request};
pub use kong_looker_testsupport::collector::KEY;
pub use kong_looker_testsupport::{OwnedRow, TestStore, now_ms, traffic};

/// The plugin binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kong-looker-plugin"))
}

/// A running `kong-looker-plugin -kong-prefix DIR`.
pub struct Plugin {
    child: Option<Child>,
    /// Kong's prefix, a temporary folder.
    pub prefix: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
    extra: Vec<String>,
}

impl Plugin {
    /// Starts the server and waits for its socket.
    pub fn start(extra: &[&str]) -> Plugin {
        let mut p = Plugin {
            child: None,
            prefix: tempfile::tempdir().unwrap(),
            stderr: Arc::new(Mutex::new(String::new())),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let mut child = Command::new(binary())
            .arg("-kong-prefix")
            .arg(self.prefix.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kong-looker-plugin");
        let mut err = child.stderr.take().unwrap();
        let sink = Arc::clone(&self.stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                eprint!("{text}");
                sink.lock().unwrap().push_str(&text);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.socket().exists() {
            assert!(Instant::now() < deadline, "no socket: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
    }

    /// Where Kong connects.
    pub fn socket(&self) -> PathBuf {
        self.prefix.path().join("kong-looker.socket")
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `text`.
    pub fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr().contains(text) {
            assert!(
                Instant::now() < deadline,
                "stderr never said {text:?}: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// SIGTERM, then waits (at most `within`); returns the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "plugin server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts it again on the same prefix.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The real collector on a fresh SQLite file, with the batch key [`KEY`],
/// and its store to read back.
pub struct Collector {
    process: kong_looker_testsupport::Collector,
    store: TestStore,
}

impl Collector {
    /// Starts one.
    pub fn start() -> Collector {
        let store = TestStore::sqlite();
        Collector {
            process: kong_looker_testsupport::Collector::start(&store.url(), &[]),
            store,
        }
    }

    /// Every row of a query, as text.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.store.rows(sql)
    }

    /// A single count.
    pub fn count(&self, sql: &str) -> i64 {
        self.store.count(sql)
    }
}

impl Deref for Collector {
    type Target = kong_looker_testsupport::Collector;
    fn deref(&self) -> &Self::Target {
        &self.process
    }
}

impl DerefMut for Collector {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.process
    }
}

/// nginx seconds (`1.234`) as whole ms.
fn ms(s: &str) -> i64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "0"));
    whole.parse::<i64>().unwrap() * 1000 + format!("{frac:0<3}")[..3].parse::<i64>().unwrap()
}

/// What Kong's log timer would hold for a request the test host would have
/// served as `r`: `kong.log.serialize()` (its Authorization redacted) and
/// the raw request headers.
pub fn snapshot_of(r: &Request, ended_at_ms: i64) -> LogSnapshot {
    let prop = |n: &str| {
        r.properties
            .get(n)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let header = |n: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let num = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
    let total_ms = prop("ngx.request_time").map(|s| ms(&s)).unwrap_or(0);
    let path = header(":path").unwrap_or_default();
    let host = header("host").unwrap_or_default();
    let scheme = header(":scheme").unwrap_or_else(|| "http".into());
    let headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| !n.starts_with(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let mut shown = serde_json::Map::new();
    for (n, v) in &headers {
        let v = if n == "authorization" { "REDACTED" } else { v };
        shown.insert(n.clone(), v.into());
    }
    let started_at = ended_at_ms - total_ms;
    let upstream_status = prop("ngx.upstream_status");
    let mut entry = serde_json::json!({
        "request": {
            "id": prop("ngx.kong_request_id"),
            "method": header(":method"),
            "uri": path,
            "url": format!("{scheme}://{host}{path}"),
            "size": num(prop("ngx.request_length")),
            "querystring": {},
            "headers": shown,
        },
        "response": {
            "status": num(prop("response.code")).unwrap_or(i64::from(r.response.status)),
            "size": num(prop("ngx.bytes_sent")),
            "headers": {},
        },
        "latencies": {
            "request": total_ms,
            "proxy": prop("ngx.upstream_response_time").map(|s| ms(&s)).unwrap_or(-1),
            "kong": 0,
            "receive": 0,
        },
        "client_ip": prop("ngx.remote_addr"),
        "started_at": started_at,
        "source": if upstream_status.is_some() { "upstream" } else { "kong" },
        "workspace": "f381e34e-5c25-4e65-b91b-3c0a86cfc393",
        "workspace_name": "default",
        "tries": [],
    });
    if let Some(s) = upstream_status {
        entry["upstream_status"] = s.into();
    }
    if let Some(id) = prop("kong.route_id") {
        entry["route"] = serde_json::json!({
            "id": id, "name": prop("kong.route_name"),
            "service": {"id": prop("kong.service_id")},
            "protocols": ["http", "https"], "strip_path": false,
        });
    }
    if let Some(id) = prop("kong.service_id") {
        entry["service"] = serde_json::json!({
            "id": id, "name": prop("kong.service_name"),
            "host": "upstream.internal", "port": 8080, "protocol": "http",
        });
    }
    LogSnapshot {
        serialize: entry,
        request_headers: headers,
        response_status: r.response.status.into(),
        req_start_time: started_at as f64 / 1000.0,
        node_id: "3f1b6a52-6c1d-4f0e-9d55-0c8f8f6b2a10".into(),
    }
}

/// The reference mix request as Kong's log snapshot, the config index
/// (chain) it goes through, and the row it must become.
pub fn mix_event(m: &mix::Mix, req: &mix::Request) -> (LogSnapshot, usize, OwnedRow) {
    let (r, row) = traffic::kong_request(m, req, Profile::Kong39);
    (snapshot_of(&r, now_ms()), r.chain, row)
}
