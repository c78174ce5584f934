//! The real `kong-looker-collector serve` as a child process, as an
//! operator runs it, and plain HTTP calls to it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kong_looker_proto::{signing, wire};

use crate::{newest_file, workspace_root};

/// The key the tests' producers sign with.
pub const KEY: &str = "collector-test-signing-key";
/// The token the tests' http-log posts carry.
pub const TOKEN: &str = "collector-test-http-log-token";

/// A running `kong-looker-collector serve`.
pub struct Collector {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its store.
    pub store: String,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// Whether it gets the batch key and the http-log token.
    credentials: (bool, bool),
}

impl Collector {
    /// Starts a collector on a free port over `store`.
    pub fn start(store: &str, extra: &[&str]) -> Collector {
        Collector::start_with_credentials(store, (true, true), extra)
    }

    /// Starts a collector that gets only the credentials asked for:
    /// (batch key, http-log token).
    pub fn start_with_credentials(
        store: &str,
        credentials: (bool, bool),
        extra: &[&str],
    ) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hmac.key"), KEY).unwrap();
        std::fs::write(dir.path().join("http-log.token"), format!("{TOKEN}\n")).unwrap();
        let mut c = Collector {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            store: store.to_owned(),
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            credentials,
        };
        // ClickHouse's default second between inserts would make tests
        // that deliver batch after batch slow; its own test keeps it.
        if store.starts_with("clickhouse:") && !extra.contains(&"--group-linger-ms") {
            c.extra.extend(["--group-linger-ms".into(), "20".into()]);
        }
        c.spawn("127.0.0.1:0".parse().unwrap());
        c
    }

    fn spawn(&mut self, listen: SocketAddr) {
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--store")
            .arg(&self.store);
        if self.credentials.0 {
            command
                .arg("--hmac-key-file")
                .arg(self.dir.path().join("hmac.key"));
        }
        if self.credentials.1 {
            command
                .arg("--http-log-token-file")
                .arg(self.dir.path().join("http-log.token"));
        }
        let mut child = command
            .args(&self.extra)
            .env_remove("KONG_LOOKER_SIGNING_KEY")
            .env_remove("KONG_LOOKER_HTTP_LOG_TOKEN")
            .env("KONG_LOOKER_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kong-looker-collector");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .rsplit("://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("collector did not start: {line:?}"));
        self.addr = addr;
        self.child = Some(child);
    }

    /// `http://addr`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then waits; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "collector ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts again on the same port and store.
    pub fn restart(&mut self) {
        self.kill9();
        let addr = self.addr;
        let deadline = Instant::now() + Duration::from_secs(10);
        // The port can linger briefly after a kill.
        loop {
            match std::net::TcpListener::bind(addr) {
                Ok(l) => {
                    drop(l);
                    break;
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("port {addr} stays busy: {e}"),
            }
        }
        self.spawn(addr);
    }

    /// The data folder (for a SQLite file).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A reply.
#[derive(Debug)]
pub struct Reply {
    /// Status; 0 when the connection failed.
    pub status: u16,
    /// Body text.
    pub body: String,
    /// `Retry-After`.
    pub retry_after: Option<String>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// `GET`; (status, body).
pub fn get(url: &str) -> (u16, String) {
    match agent().get(url).call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(_) => (0, String::new()),
    }
}

/// `POST` with headers.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.send(body) {
        Ok(mut r) => Reply {
            status: r.status().as_u16(),
            retry_after: r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: r.body_mut().read_to_string().unwrap_or_default(),
        },
        Err(e) => Reply {
            status: 0,
            body: e.to_string(),
            retry_after: None,
        },
    }
}

/// Posts a batch, signed with `key` at the current time.
pub fn post_batch(c: &Collector, bytes: &[u8], key: &[u8]) -> Reply {
    let auth = signing::authorization(key, now_ms() / 1000, bytes);
    post(
        &c.url(wire::BATCHES_PATH),
        &[
            ("content-type", wire::BATCH_CONTENT_TYPE),
            ("authorization", &auth),
        ],
        bytes,
    )
}

/// Posts http-log JSON with the right token.
pub fn post_http_log(c: &Collector, json: &str) -> Reply {
    post(
        &c.url(wire::HTTP_LOG_PATH),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {TOKEN}")),
        ],
        json.as_bytes(),
    )
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The collector binary cargo built beside the running test. Tests of other
/// crates than the collector find it missing or older than its sources when
/// run alone (`cargo test -p kong-looker-plugin`); then it is built first.
pub fn binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            // target/<profile>/deps/<test> -> target/<profile>/
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("a test binary under target/");
            let bin = dir.join("kong-looker-collector");
            if !fresh(&bin) {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let ok = Command::new(cargo)
                    .current_dir(workspace_root())
                    .args(["build", "-p", "kong-looker-collector", "--bin"])
                    .arg("kong-looker-collector")
                    .status()
                    .expect("run cargo")
                    .success();
                assert!(ok, "cannot build kong-looker-collector");
            }
            bin
        })
        .clone()
}

fn fresh(bin: &Path) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let root = workspace_root();
    [
        "collector/src",
        "core/src",
        "proto/src",
        "proto/kong_looker",
    ]
    .iter()
    .all(|dir| newest_file(&root.join(dir)) <= built)
}
