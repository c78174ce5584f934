//! `make demo VIA=plugin`: the same traffic through the real
//! `kong-looker-plugin` binary instead of the filter, driven over its Unix
//! socket the way Kong's `pb_rpc.lua` drives an external plugin server
//! (two workers, each with its pooled connections), from the log snapshots
//! Kong would keep for each request.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kong_looker_testkit::plugin_server::{KongWorker, LogSnapshot};

/// A running plugin server and Kong's two workers talking to it.
pub struct PluginPath {
    child: Child,
    _prefix: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
    workers: Vec<KongWorker>,
    metrics_url: String,
}

impl PluginPath {
    /// Starts `kong-looker-plugin -kong-prefix TMP -metrics-listen
    /// 127.0.0.1:0` and waits for its socket.
    pub fn start() -> PluginPath {
        let prefix = tempfile::tempdir().expect("a prefix folder");
        let mut child = Command::new(binary())
            .arg("-kong-prefix")
            .arg(prefix.path())
            .args(["-metrics-listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kong-looker-plugin");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("stderr buffer")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let socket = prefix.path().join("kong-looker.socket");
        let deadline = Instant::now() + Duration::from_secs(10);
        let metrics_url = loop {
            let text = stderr.lock().expect("stderr buffer").clone();
            let url = text
                .lines()
                .find_map(|l| l.split("metrics on ").nth(1).map(str::to_owned));
            if let Some(url) = url.filter(|_| socket.exists()) {
                break url;
            }
            assert!(
                Instant::now() < deadline,
                "kong-looker-plugin did not start: {text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let workers = (0..2)
            .map(|_| KongWorker::new(&socket, "kong-looker"))
            .collect();
        PluginPath {
            child,
            _prefix: prefix,
            stderr,
            reader,
            workers,
            metrics_url,
        }
    }

    /// One log event, on worker `worker`, through the chain `config`.
    pub fn log(&mut self, worker: usize, config: &str, snapshot: &LogSnapshot) {
        let n = self.workers.len();
        if let Err(e) = self.workers[worker % n].log(config, snapshot) {
            panic!("the plugin server failed an event: {e}");
        }
    }

    /// Its counters, by the filter's names (`records_captured`, ...).
    pub fn metrics(&self) -> BTreeMap<String, u64> {
        let text = super::http_get_url(&self.metrics_url);
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                let name = name.strip_prefix("kong_looker_")?;
                let name = name.strip_suffix("_total").unwrap_or(name);
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// SIGTERM, as Kong stops it; the line it stops with.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("the plugin server exits");
        assert!(status.success(), "the plugin server failed: {status}");
        let _ = self.reader.join();
        let text = self.stderr.lock().expect("stderr buffer").clone();
        text.lines()
            .find_map(|l| l.split("stopped: ").nth(1))
            .unwrap_or_default()
            .to_owned()
    }
}

/// The plugin binary beside the examples folder: target/<profile>/.
fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(Path::parent)
        .map(|p| p.join("kong-looker-plugin"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| panic!("kong-looker-plugin is not built: run `make demo VIA=plugin`"))
}
