//! nginx with ngx_wasm_module, as a child process in a prefix of its own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::free_port;

/// Where the prebuilt engine lives, relative to the repository root.
pub const DEFAULT_DIR: &str = "../shared/ngx-wasm";
/// A folder holding the engine's `bin/`, overriding the default.
pub const DIR_ENV: &str = "KONG_LOOKER_NGX_WASM";

/// The two real engine builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `bin/nginx-kong-3.9`: Kong 3.9's pins of nginx, ngx_wasm_module and
    /// Wasmtime.
    Kong39,
    /// `bin/nginx`: nginx 1.27.4 with a newer ngx_wasm_module (Kong 3.10's).
    Newer,
}

impl Engine {
    /// Both, in test order.
    pub const ALL: [Engine; 2] = [Engine::Kong39, Engine::Newer];

    /// The binary's file name.
    pub fn binary_name(self) -> &'static str {
        match self {
            Engine::Kong39 => "nginx-kong-3.9",
            Engine::Newer => "nginx",
        }
    }

    /// The binary, or a failure that says how to get it: the engine tests
    /// never pass without the engine.
    pub fn binary(self) -> PathBuf {
        let dir = match std::env::var_os(DIR_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => super::repo_root().join(DEFAULT_DIR),
        };
        let bin = dir.join("bin").join(self.binary_name());
        assert!(
            bin.is_file(),
            "the real Wasm engine is missing: no {}. The engine tests run dist/kong_looker.wasm \
             in Kong's ngx_wasm_module (prebuilt nginx binaries `bin/nginx-kong-3.9` and \
             `bin/nginx`). Put the shared `ngx-wasm` folder at {} ({DEFAULT_DIR} from the \
             repository root; it comes with the workplace's shared/ folder), or set {DIR_ENV} \
             to a folder holding bin/; see that folder's README.md",
            bin.display(),
            super::repo_root().join(DEFAULT_DIR).display()
        );
        bin
    }
}

/// One `server` block: a port, and the filter config of its location, or
/// none for a location without the filter.
#[derive(Clone, Debug)]
pub struct Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `proxy_wasm kong_looker '<config>'`, when set.
    pub config: Option<String>,
}

/// What an nginx is started with.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Which build.
    pub engine: Engine,
    /// `worker_processes`.
    pub workers: u32,
    /// `worker_connections`.
    pub connections: u32,
    /// The servers, one per filter chain.
    pub servers: Vec<Server>,
    /// The upstream's port.
    pub upstream: u16,
    /// Whether the http block includes `kong_looker.nginx.conf`, so that
    /// the filter reads nginx's figures in one call (default yes).
    pub line: bool,
}

impl Setup {
    /// `workers` workers of `engine` in front of `upstream`, a server (on a
    /// free port) for each config.
    pub fn new(engine: Engine, workers: u32, upstream: u16, configs: &[Option<String>]) -> Setup {
        // Distinct ports: two servers on one port would share it by name.
        let mut ports = vec![upstream];
        for _ in configs {
            let port = (0..100)
                .map(|_| free_port())
                .find(|p| !ports.contains(p))
                .expect("a free port");
            ports.push(port);
        }
        Setup {
            engine,
            workers,
            // Small enough that leaked connection slots (several dispatches
            // in one tick) run out within a test, as they would in hours
            // at Kong's 16384; ample for the tests' own connections.
            connections: 256,
            servers: configs
                .iter()
                .zip(&ports[1..])
                .map(|(c, &port)| Server {
                    port,
                    config: c.clone(),
                })
                .collect(),
            upstream,
            line: true,
        }
    }
}

/// A running nginx: its master is our child.
pub struct Nginx {
    /// How it was started.
    pub setup: Setup,
    prefix: tempfile::TempDir,
    conf: PathBuf,
    child: Option<Child>,
}

impl Nginx {
    /// Writes the config into a fresh prefix, starts nginx and waits until
    /// every server accepts connections.
    pub fn start(setup: Setup) -> Nginx {
        let bin = setup.engine.binary();
        let wasm = super::wasm();
        let prefix = tempfile::Builder::new()
            .prefix("kl-engine-")
            .tempdir()
            .unwrap();
        // The workers run as nobody: the prefix must be theirs too.
        let logs = prefix.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        open_up(prefix.path());
        open_up(&logs);
        let conf = prefix.path().join("nginx.conf");
        std::fs::write(&conf, config_text(&setup, &wasm, prefix.path())).unwrap();
        let stderr = std::fs::File::create(logs.join("stderr.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg("stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut n = Nginx {
            setup,
            prefix,
            conf,
            child: Some(child),
        };
        n.wait_ready();
        n
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited at start ({status}):\n{}",
                    self.setup.engine.binary_name(),
                    self.log_tail(40)
                );
            }
            let listening = self.setup.servers.iter().all(|s| {
                std::net::TcpStream::connect_timeout(
                    &([127, 0, 0, 1], s.port).into(),
                    Duration::from_millis(200),
                )
                .is_ok()
            });
            if listening && workers(self.pid()).len() == self.setup.workers as usize {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx never listened:\n{}",
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The server ports, in chain order.
    pub fn ports(&self) -> Vec<u16> {
        self.setup.servers.iter().map(|s| s.port).collect()
    }

    /// The worker pids.
    pub fn workers(&self) -> Vec<u32> {
        workers(self.pid())
    }

    /// `nginx -s reload`; returns once new workers run.
    pub fn reload(&self) {
        let before = self.workers();
        self.signal("reload");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = self.workers();
            if now.iter().filter(|p| !before.contains(p)).count() == self.setup.workers as usize {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no new workers after a reload:\n{}",
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nginx -s <signal>` with this prefix and config.
    pub fn signal(&self, signal: &str) {
        let out = Command::new(self.setup.engine.binary())
            .arg("-p")
            .arg(self.prefix.path())
            .arg("-c")
            .arg(&self.conf)
            .args(["-e", "stderr", "-s", signal])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nginx -s {signal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `nginx -s quit` (graceful) and waits for the master to exit.
    pub fn quit(&mut self) {
        if self.child.is_none() {
            return;
        }
        self.signal("quit");
        let deadline = Instant::now() + Duration::from_secs(30);
        let child = self.child.as_mut().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                self.child = None;
                return;
            }
            assert!(Instant::now() < deadline, "nginx ignored -s quit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The error log and what nginx wrote to stderr.
    pub fn log(&self) -> String {
        let logs = self.prefix.path().join("logs");
        let mut text = std::fs::read_to_string(logs.join("stderr.log")).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(logs.join("error.log")).unwrap_or_default());
        text
    }

    /// The last `n` lines of [`Nginx::log`].
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Lines with a trap, a panic, or an `[alert]`, `[crit]` or `[emerg]`.
    pub fn bad_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                let lower = l.to_ascii_lowercase();
                lower.contains("trap")
                    || lower.contains("panic")
                    || l.contains("[alert]")
                    || l.contains("[crit]")
                    || l.contains("[emerg]")
            })
            .map(str::to_owned)
            .collect()
    }

    /// Asserts the error log has no trap, panic, alert, crit or emerg line.
    pub fn assert_clean_log(&self) {
        let bad = self.bad_lines();
        assert!(
            bad.is_empty(),
            "{} bad lines in the error log of {}, such as:\n{}",
            bad.len(),
            self.setup.engine.binary_name(),
            bad[..bad.len().min(12)].join("\n")
        );
    }

    /// Lines at `[error]` level, by count of their text after the pid part.
    pub fn error_lines(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("[error]"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let workers = workers(child.id());
            // Fast shutdown, then no more patience.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            for w in workers {
                if is_alive(w) {
                    let _ = Command::new("kill")
                        .args(["-KILL", &w.to_string()])
                        .status();
                }
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {} error log (last lines) ---\n{}",
                self.setup.engine.binary_name(),
                self.log_tail(30)
            );
        }
    }
}

fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// A path every filtered server answers in nginx's rewrite phase (301).
pub const REWRITE_PATH: &str = "/kong-looker/answered-in-rewrite";

/// A path proxied with ai-proxy's response headers added, as Kong's
/// ai-proxy adds them, through the chain's config with `ai_model_header`.
pub const LLM_PATH: &str = "/kong-looker/llm/v1/chat/completions";

/// The include that the README tells operators to add, as shipped.
fn include_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kong_looker.nginx.conf")
}

fn config_text(setup: &Setup, wasm: &Path, prefix: &Path) -> String {
    let mut c = String::new();
    let p = prefix.display();
    writeln!(
        c,
        "daemon off;\nmaster_process on;\nworker_processes {};\n\
         error_log {p}/logs/error.log notice;\npid {p}/logs/nginx.pid;\n\
         events {{ worker_connections {}; }}\n\
         wasm {{\n    module kong_looker {};\n    socket_connect_timeout 60s;\n    \
         socket_read_timeout 60s;\n    socket_send_timeout 60s;\n}}",
        setup.workers,
        setup.connections,
        wasm.display()
    )
    .unwrap();
    writeln!(
        c,
        "http {{\n    access_log off;\n    keepalive_requests 1000000;\n    \
         client_body_temp_path {p}/client_body;\n    proxy_temp_path {p}/proxy;\n    \
         # Kong's request id, which bare nginx lacks: the client sends it.\n    \
         map $http_x_kong_request_id $kong_request_id {{ default $http_x_kong_request_id; }}\n    \
         {}\n    \
         upstream backend {{ server 127.0.0.1:{}; keepalive 64; keepalive_requests 1000000; }}\n    \
         proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n    \
         proxy_buffering on;\n    proxy_read_timeout 60s;",
        if setup.line {
            format!("include {};", include_path().display())
        } else {
            "# without kong_looker.nginx.conf".to_owned()
        },
        setup.upstream
    )
    .unwrap();
    for s in &setup.servers {
        writeln!(
            c,
            "    server {{\n        listen 127.0.0.1:{};\n        \
             # Kong runs on_request_headers in the access phase.\n        \
             proxy_wasm_request_headers_in_access on;\n        location / {{",
            s.port
        )
        .unwrap();
        if let Some(cfg) = &s.config {
            assert!(!cfg.contains('\''), "a config with a quote: {cfg}");
            writeln!(c, "            proxy_wasm kong_looker '{cfg}';").unwrap();
        }
        writeln!(c, "            proxy_pass http://backend;\n        }}").unwrap();
        // nginx answers this one in its rewrite phase, before the access
        // phase where on_request_headers runs: only on_log sees it.
        if let Some(cfg) = &s.config {
            writeln!(
                c,
                "        location = {REWRITE_PATH} {{\n            \
                 proxy_wasm kong_looker '{cfg}';\n            \
                 return 301 /moved;\n        }}"
            )
            .unwrap();
            // The same config with one more member: drop its closing brace.
            let open = cfg.trim_end().strip_suffix('}').unwrap_or(cfg);
            let llm = format!("{open},\"ai_model_header\":true}}");
            writeln!(
                c,
                "        location = {LLM_PATH} {{\n            \
                 proxy_wasm kong_looker '{llm}';\n            \
                 add_header X-Kong-LLM-Model openai/gpt-4o;\n            \
                 add_header X-Cache-Status Miss;\n            \
                 proxy_pass http://backend;\n        }}"
            )
            .unwrap();
        }
        writeln!(c, "    }}").unwrap();
    }
    c.push_str("}\n");
    c
}

/// The children of `master` that are worker processes.
pub fn workers(master: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(master) {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("worker process") {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// A process's resident set, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
