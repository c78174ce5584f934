//! `make demo`: the whole pipeline on one machine, on the embedded store.
//!
//! It starts the collector on SQLite on 127.0.0.1, loads
//! `dist/kong_looker.wasm` in kong-looker's test host (which imitates
//! Kong 3.9's ngx_wasm_module, two workers) with the filter config from
//! `kong.yml`, runs the reference traffic mix through it, sends the
//! requests Kong's own plugins would reject to the collector's http-log
//! endpoint, waits for the last flush, stops the collector with SIGTERM,
//! and reports from the store.
//!
//! `make demo VIA=plugin` (`--via plugin`) sends the same traffic through
//! the real `kong-looker-plugin` server instead, as Kong's log phase would
//! (`plugin.rs`). `make demo STORE=clickhouse` (`--store clickhouse`) runs
//! it on a throwaway ClickHouse server (`scripts/with-clickhouse`), and
//! `--store clickhouse://USER:PASSWORD@HOST:8123` on yours, in a database
//! `kong_looker_demo` that it replaces.

mod plugin;
mod report;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kong_looker_core::capture::log_line;
use kong_looker_proto::mix::{AI_SHARE, Mix, MixParams};
use kong_looker_testkit::{Kong, Profile};
use kong_looker_testsupport::traffic;

const REQUESTS: usize = 100_000;
/// Requests Kong's auth plugins refuse before the filter runs, reported by
/// http-log only.
const REJECTED: usize = 2_000;
/// The demo secrets, as kong.yml has them.
const SIGNING_KEY: &str = "demo-signing-key-change-me";
const HTTP_LOG_TOKEN: &str = "demo-http-log-token-change-me";

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let args = Args::parse();
    let data = root.join("demo-data");
    std::fs::create_dir_all(&data).expect("demo-data/");
    let db = report::DemoStore::fresh(args.store.as_deref(), &data);
    std::fs::write(data.join("signing.key"), SIGNING_KEY).expect("key file");
    std::fs::write(data.join("http-log.token"), HTTP_LOG_TOKEN).expect("token file");

    // The host's clock moves with each request's duration: start it so the
    // run ends about now, because the collector checks times against its own.
    let params = MixParams {
        request_ids: true,
        ai_share: AI_SHARE,
        ..MixParams::default()
    };
    let span_ms: u64 = Mix::new(params.clone())
        .take_requests(REQUESTS)
        .iter()
        .map(|r| r.total_us / 1000)
        .sum();
    let now = now_ms();
    let start_ms = now - span_ms - 60_000;

    let mut collector = start_collector(&root, &data, &db.url(), span_ms);
    let addr = collector.addr.clone();
    println!(
        "collector  listening on http://{addr}, store {}",
        db.shown()
    );

    let chains = chains_from_kong_yml(&root.join("kong.yml"), &addr);
    let mut gateway = if args.via_plugin {
        println!(
            "plugin     kong-looker-plugin, driven over its Unix socket as Kong's log phase drives it (2 workers, {} plugin configs from kong.yml)",
            chains.len()
        );
        Gateway::Plugin(plugin::PluginPath::start())
    } else {
        let filter = kong_looker_testsupport::filter();
        // Kong's nginx config with kong_looker.nginx.conf included, as the
        // README sets it up.
        let mut b = Kong::builder(&filter, Profile::Kong39)
            .workers(2)
            .start_at_ms(start_ms)
            .nginx_map(log_line::VARIABLE, log_line::FORMAT);
        for c in &chains {
            b = b.chain(c);
        }
        println!(
            "filter     dist/kong_looker.wasm in the test host (Kong 3.9 profile with kong_looker.nginx.conf, 2 workers, {} chains, config from kong.yml)",
            chains.len()
        );
        Gateway::Filter(b.build())
    };
    println!(
        "traffic    {REQUESTS} reference-mix requests ({:.0}% through Kong's AI Gateway), plus {REJECTED} that Kong's plugins reject (via http-log)",
        AI_SHARE * 100.0
    );

    let started = Instant::now();
    let mut mix = Mix::new(params);
    // The filter cannot read Kong's `ai` log section: as in kong.yml,
    // http-log on the AI routes sends it, and the collector merges it into
    // the filter's row by request id. (The plugin server reads it itself.)
    let mut ai_entries = Vec::new();
    let mut clock_ms = start_ms;
    for i in 0..REQUESTS {
        let req = mix.next_request();
        let (r, _) = traffic::kong_request(&mix, &req, Profile::Kong39);
        clock_ms += req.total_us / 1000;
        if r.log_ai.is_some() && matches!(gateway, Gateway::Filter(_)) {
            ai_entries.push(kong_looker_testsupport::snapshot::of(&r, clock_ms as i64).serialize);
        }
        gateway.serve(i, &r, &chains);
        if i % 500 == 499 {
            gateway.advance(Duration::from_millis(250));
        }
        if (i + 1) % 10_000 == 0 {
            let m = gateway.metrics();
            // Redraw one line on a terminal; one line per step in a log.
            let end = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                ""
            } else {
                "\n"
            };
            print!(
                "\r           {:>6} requests, {:>6} records delivered ({:.0} s){end}",
                i + 1,
                m.get("records_delivered").copied().unwrap_or(0),
                started.elapsed().as_secs_f64()
            );
            let _ = std::io::stdout().flush();
        }
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        println!();
    }
    send_rejected(&addr, start_ms);
    post_entries(&addr, &ai_entries);

    // The last flush: turn the clock until every record is delivered or
    // counted as dropped.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        gateway.advance(Duration::from_millis(500));
        let m = gateway.metrics();
        let settled = m.get("records_delivered").copied().unwrap_or(0)
            + m.iter()
                .filter(|(k, _)| k.starts_with("records_dropped_"))
                .map(|(_, v)| *v)
                .sum::<u64>();
        if settled >= m.get("records_captured").copied().unwrap_or(0)
            && m.get("buffer_bytes").copied().unwrap_or(0) == 0
        {
            gateway.advance(Duration::from_millis(1500));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never flushed: {m:?}"
        );
    }
    let collector_metrics = http_get(&addr, "/metrics");
    let final_metrics = gateway.metrics();
    let (wire_bytes, host) = match gateway {
        Gateway::Filter(kong) => (
            kong.dispatches()
                .iter()
                .filter(|d| d.path == "/v1/batches")
                .map(|d| d.body.len())
                .sum(),
            "the filter",
        ),
        Gateway::Plugin(p) => {
            let bytes = final_metrics.get("batch_bytes_sent").copied().unwrap_or(0);
            println!("plugin     stopped on SIGTERM: {}", p.stop());
            (
                usize::try_from(bytes).unwrap_or(usize::MAX),
                "the plugin server",
            )
        }
    };
    collector.stop();
    println!(
        "done       in {:.0} s; the collector stopped cleanly on SIGTERM",
        started.elapsed().as_secs_f64()
    );
    let summary = stats(&db.url());
    report::report(
        &db,
        host,
        &final_metrics,
        &summary,
        &collector_metrics,
        wire_bytes,
    );
    println!();
    println!("The store   {}", db.shown());
    println!(
        "The LookML  {}/looker (import it into Looker; see looker/README.md)",
        root.display()
    );
    let kind = match db {
        report::DemoStore::Sqlite(_) => {
            println!("Looker reads PostgreSQL or ClickHouse, not SQLite: run the collector with");
            println!("            --store postgres://USER:PASSWORD@HOST:5432/DB");
            println!("            --store clickhouse://USER:PASSWORD@HOST:8123/DB");
            "SQLite"
        }
        report::DemoStore::ClickHouse(_) => {
            println!("Looker reads this database directly: a ClickHouse connection to it.");
            "ClickHouse"
        }
    };
    println!();
    if host == "the filter" {
        println!("What ran: the real kong_looker.wasm, in kong-looker's test host on Wasmtime,");
        println!("which imitates Kong 3.9's ngx_wasm_module. It is not Kong. The collector,");
        println!("its HTTP, its signature checks and its {kind} commits were the real ones.");
    } else {
        println!("What ran: the real kong-looker-plugin binary, over its Unix socket, driven");
        println!("by kong-looker's stand-in for Kong's pb_rpc.lua from the log snapshots Kong");
        println!("would keep. It is not Kong. The collector, its HTTP, its signature checks");
        println!("and its {kind} commits were the real ones.");
    }
}

/// `--via plugin` (or `VIA=plugin` through make).
/// The demo's options.
struct Args {
    via_plugin: bool,
    /// `clickhouse` (the server of `scripts/with-clickhouse`) or a
    /// `clickhouse://` URL; SQLite in demo-data/ without.
    store: Option<String>,
}

impl Args {
    fn parse() -> Args {
        const USAGE: &str = "usage: demo [--via filter|plugin] [--store clickhouse|clickhouse://…]";
        let mut args = Args {
            via_plugin: false,
            store: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            match (a.as_str(), it.next().as_deref()) {
                ("--via", Some("filter")) => args.via_plugin = false,
                ("--via", Some("plugin")) => args.via_plugin = true,
                ("--store", Some(s)) if s == "clickhouse" || s.starts_with("clickhouse://") => {
                    args.store = Some(s.to_owned());
                }
                ("--store", Some("sqlite")) => args.store = None,
                (a, v) => panic!("{USAGE}, not {a} {}", v.unwrap_or_default()),
            }
        }
        args
    }
}

/// Where the traffic goes: the filter in the test host, or the plugin
/// server.
enum Gateway {
    Filter(Kong),
    Plugin(plugin::PluginPath),
}

impl Gateway {
    /// Request `i`, through the chain it belongs to.
    fn serve(&mut self, i: usize, r: &kong_looker_testkit::Request, chains: &[String]) {
        match self {
            Gateway::Filter(kong) => {
                let out = kong.request(i % 2, r);
                assert!(out.trap.is_none(), "the filter trapped: {:?}", out.trap);
            }
            Gateway::Plugin(p) => {
                let snapshot = kong_looker_testsupport::snapshot::of(r, now_ms() as i64);
                p.log(i, &chains[r.chain], &snapshot);
            }
        }
    }

    /// Lets time pass: the test host's clock, or the wall clock for the
    /// plugin server's own timers.
    fn advance(&mut self, d: Duration) {
        match self {
            Gateway::Filter(kong) => kong.advance(d),
            Gateway::Plugin(_) => std::thread::sleep(d / 25),
        }
    }

    /// The host's counters, by the filter's names.
    fn metrics(&self) -> BTreeMap<String, u64> {
        match self {
            Gateway::Filter(kong) => kong_looker_testsupport::filter_metrics(kong),
            Gateway::Plugin(p) => p.metrics(),
        }
    }
}

struct Collector {
    child: Child,
    addr: String,
}

impl Collector {
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        match self.child.wait() {
            Ok(s) if s.success() => {}
            other => panic!("the collector did not stop cleanly: {other:?}"),
        }
    }
}

/// The collector binary, which sits beside the examples folder:
/// target/<profile>/.
fn collector_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(Path::parent)
        .map(|p| p.join("kong-looker-collector"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("kong-looker-collector is not built: run `make demo` (or cargo build -p kong-looker-collector)")
        })
}

/// The store's summary, as an operator reads it: `kong-looker-collector
/// stats --json`.
fn stats(store: &str) -> serde_json::Value {
    let out = Command::new(collector_bin())
        .args(["stats", "--json", "--store", store])
        .output()
        .expect("kong-looker-collector stats");
    assert!(
        out.status.success(),
        "stats failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stats --json prints JSON")
}

fn start_collector(root: &Path, data: &Path, store: &str, span_ms: u64) -> Collector {
    let mut child = Command::new(collector_bin())
        .current_dir(root)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--store", store])
        .arg("--hmac-key-file")
        .arg(data.join("signing.key"))
        .arg("--http-log-token-file")
        .arg(data.join("http-log.token"))
        // The test host's clock runs ahead through the simulated traffic;
        // the signature window covers it.
        .arg("--max-skew-seconds")
        .arg((span_ms / 1000 + 600).to_string())
        .env("KONG_LOOKER_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kong-looker-collector");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("collector start-up line");
    let addr = line
        .trim()
        .rsplit("://")
        .next()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| panic!("the collector did not start: {line:?}"))
        .to_owned();
    Collector { child, addr }
}

/// The six reference chains (three teams, with and without an auth plugin
/// guarding them), each with the full config of kong.yml's `orders` chain,
/// pointed at the local collector.
fn chains_from_kong_yml(path: &Path, addr: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("kong.yml");
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("kong.yml is YAML");
    let services = docs[0]["services"].as_vec().expect("services");
    let config = services
        .iter()
        .flat_map(|s| s["filter_chains"].as_vec().cloned().unwrap_or_default())
        .flat_map(|c| c["filters"].as_vec().cloned().unwrap_or_default())
        .find(|f| {
            f["name"].as_str() == Some("kong_looker") && !f["config"]["signing_key"].is_badvalue()
        })
        .map(|f| yaml_to_json(&f["config"]))
        .expect("a kong_looker filter with a signing key in kong.yml");
    traffic::TEAMS
        .iter()
        .flat_map(|team| {
            [true, false].map(|guarded| {
                let mut c = config.clone();
                c["collector"] = addr.into();
                c["workspace"] = (*team).into();
                c["identity"]["auth_plugin"] = guarded.into();
                c.to_string()
            })
        })
        .collect()
}

fn yaml_to_json(y: &yaml_rust2::Yaml) -> serde_json::Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(r) => r
            .parse::<f64>()
            .map(serde_json::Value::from)
            .unwrap_or_default(),
        Yaml::Integer(i) => (*i).into(),
        Yaml::String(s) => s.clone().into(),
        Yaml::Boolean(b) => (*b).into(),
        Yaml::Array(a) => a.iter().map(yaml_to_json).collect::<Vec<_>>().into(),
        Yaml::Hash(h) => h
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), yaml_to_json(v))))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        _ => serde_json::Value::Null,
    }
}

/// Requests Kong's key-auth and jwt plugins refused (401, 403) and that
/// matched no route (404), as Kong's http-log plugin sends them.
fn send_rejected(addr: &str, start_ms: u64) {
    let clients = ["billing-app", "mobile-ios", "partner-sync", "scraper-x"];
    let entries: Vec<serde_json::Value> = (0..REJECTED)
        .map(|i| {
            let status = [401, 401, 403, 404][i % 4];
            serde_json::json!({
                "started_at": start_ms + (i as u64) * 1000,
                "request": {
                    "id": format!("{:032x}", 0xdead_0000_0000u64 + i as u64),
                    "method": "GET",
                    "uri": format!("/orders/{}", 4000 + i),
                    "size": 180,
                    "headers": {"host": "api.example.com", "user-agent": "python-requests/2.32.3"},
                },
                "response": {"status": status, "size": 52},
                "route": if status == 404 { serde_json::Value::Null } else { serde_json::json!({"name": "orders-api-key"}) },
                "service": if status == 404 { serde_json::Value::Null } else { serde_json::json!({"name": "orders"}) },
                "kong_looker_team": "commerce",
                "consumer": if status == 403 { serde_json::json!({"username": clients[(i / 4) % 4]}) } else { serde_json::Value::Null },
                "latencies": {"request": 1, "proxy": -1, "kong": 1},
                "source": "kong",
                "client_ip": format!("198.51.100.{}", i % 200),
            })
        })
        .collect();
    post_entries(addr, &entries);
}

/// Posts http-log entries as Kong's http-log queue does, 200 at a time.
fn post_entries(addr: &str, entries: &[serde_json::Value]) {
    for chunk in entries.chunks(200) {
        let body = serde_json::to_vec(chunk).expect("json");
        let (status, text) = http_post(addr, "/v1/kong/http-log", &body);
        assert_eq!(status, 204, "http-log refused: {text}");
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Posts http-log JSON as Kong's plugin does; returns the status and body.
fn http_post(addr: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut reply = agent()
        .post(&format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .header("authorization", &format!("Bearer {HTTP_LOG_TOKEN}"))
        .send(body)
        .expect("collector reachable");
    let status = reply.status().as_u16();
    (
        status,
        reply.body_mut().read_to_string().unwrap_or_default(),
    )
}

fn http_get(addr: &str, path: &str) -> String {
    http_get_url(&format!("http://{addr}{path}"))
}

fn http_get_url(url: &str) -> String {
    agent()
        .get(url)
        .call()
        .expect("collector reachable")
        .body_mut()
        .read_to_string()
        .unwrap_or_default()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
