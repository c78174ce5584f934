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
use kong_looker_testkit::Profile;
use kong_looker_testkit::plugin_server::LogSnapshot;
pub use kong_looker_testsupport::collector::KEY;
pub use kong_looker_testsupport::{OwnedRow, TestStore, now_ms, snapshot, traffic};

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
        Collector::start_with(&[])
    }

    /// Starts one with more flags (another `--listen`, TLS).
    pub fn start_with(extra: &[&str]) -> Collector {
        let store = TestStore::sqlite();
        Collector {
            process: kong_looker_testsupport::Collector::start(&store.url(), extra),
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

/// The reference mix request as Kong's log snapshot, the config index
/// (chain) it goes through, and the row it must become.
pub fn mix_event(m: &mix::Mix, req: &mix::Request) -> (LogSnapshot, usize, OwnedRow) {
    let (r, row) = traffic::kong_request(m, req, Profile::Kong39);
    (snapshot::of(&r, now_ms()), r.chain, row)
}
