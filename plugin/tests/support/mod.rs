//! What the plugin server's tests share: the real binary started as Kong
//! starts it, the real collector on SQLite, and the reference mix turned
//! into the log snapshots Kong would keep for it (through the filter
//! tests' own mapping, `tests/support/traffic.rs`, so that both hosts are
//! checked against the same expected rows).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kong_looker_proto::mix;
use kong_looker_testkit::plugin_server::LogSnapshot;
use kong_looker_testkit::{Profile, Request};

#[allow(dead_code, clippy::all)]
#[path = "../../../tests/support/traffic.rs"]
pub mod traffic;

/// The signing key the collector is given.
pub const KEY: &str = "collector-test-signing-key";

/// A row as the filter tests expect it (the fields `traffic.rs` fills).
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

/// A running collector (`kong-looker-collector serve`) on a SQLite file.
pub struct Collector {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Collector {
    /// Starts one on a fresh SQLite file, with the batch key [`KEY`].
    pub fn start() -> Collector {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hmac.key"), KEY).unwrap();
        let (child, addr) = Self::spawn(dir.path(), "127.0.0.1:0");
        Collector {
            child: Some(child),
            addr,
            dir,
        }
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same port and store.
    pub fn restart(&mut self) {
        self.kill9();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpListener::bind(self.addr).is_err() {
            assert!(Instant::now() < deadline, "port {} stays busy", self.addr);
            std::thread::sleep(Duration::from_millis(50));
        }
        let (child, _) = Self::spawn(self.dir.path(), &self.addr.to_string());
        self.child = Some(child);
    }

    fn spawn(dir: &Path, listen: &str) -> (Child, SocketAddr) {
        let mut child = Command::new(collector_binary())
            .arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--store")
            .arg(format!("sqlite:{}", Self::db_path(dir).display()))
            .arg("--hmac-key-file")
            .arg(dir.join("hmac.key"))
            .env_remove("KONG_LOOKER_SIGNING_KEY")
            .env_remove("KONG_LOOKER_HTTP_LOG_TOKEN")
            .env("KONG_LOOKER_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kong-looker-collector");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("collector did not start: {line:?}"));
        (child, addr)
    }

    fn db_path(dir: &Path) -> PathBuf {
        dir.join("kong_looker.sqlite")
    }

    /// Every row of a query, as text.
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let conn = rusqlite::Connection::open_with_flags(
            Self::db_path(self.dir.path()),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |row| {
            (0..n)
                .map(|i| {
                    row.get_ref(i).map(|v| match v {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(i) => Some(i.to_string()),
                        rusqlite::types::ValueRef::Real(f) => Some(f.to_string()),
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                    })
                })
                .collect()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// A single count.
    pub fn count(&self, sql: &str) -> i64 {
        self.rows(sql)[0][0]
            .as_deref()
            .unwrap_or("0")
            .parse()
            .unwrap()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The collector binary next to this test's, built if missing.
fn collector_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = dir.join("kong-looker-collector");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args([
                "build",
                "-p",
                "kong-looker-collector",
                "--bin",
                "kong-looker-collector",
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot build the collector");
    }
    bin
}

/// Wall clock, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
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
