//! Plugin CPU per log event over a real Unix socket (issue 16's goal: at
//! most 15 µs more than a no-op server driven the same way). One Kong
//! worker (testkit's driver) sends the reference mix, sequentially, to the
//! release `kong-looker-plugin` (capturing, batching, shipping signed
//! batches to a sink) and to the release `noop_server` (`plugin/noop/`, the same
//! two PDK round trips, nothing else); each server's CPU is its user plus
//! system time from `/proc`. Ignored by default: it needs release builds.
//!
//! ```text
//! cargo build --release -p kong-looker-plugin --bin kong-looker-plugin
//! cargo build --release --manifest-path plugin/noop/Cargo.toml
//! cargo test -p kong-looker-plugin --test cost -- --ignored --nocapture
//! ```

mod support;

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::Sink;
use kong_looker_testkit::plugin_server::{KongWorker, LogSnapshot};

const EVENTS: usize = 20_000;
const WARM_UP: usize = 2_000;

/// utime + stime of a process, in seconds (USER_HZ is 100 on Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

fn release(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .unwrap();
    // KONG_LOOKER_COST_PROFILE=profiling measures a build with symbols.
    let profile = std::env::var("KONG_LOOKER_COST_PROFILE").unwrap_or_else(|_| "release".into());
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is missing: build it in release (see this file's docs)",
        path.display()
    );
    path
}

fn spawn(binary: &Path, args: &[&std::ffi::OsStr], socket: &Path) -> Child {
    let child = Command::new(binary)
        .args(args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "no server at {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Server CPU and wall time per event, µs, after a warm-up.
fn run(pid: u32, socket: &Path, config: &str, events: &[LogSnapshot]) -> (f64, f64) {
    let mut kong = KongWorker::new(socket, "kong-looker");
    for e in events.iter().take(WARM_UP) {
        kong.log(config, e).unwrap();
    }
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    for e in events {
        kong.log(config, e).unwrap();
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let n = events.len() as f64;
    (cpu / n * 1e6, wall / n * 1e6)
}

#[test]
#[ignore = "needs release builds; prints figures"]
fn plugin_cpu_per_event() {
    let mut m = Mix::new(MixParams {
        seed: 31,
        request_ids: true,
        ..MixParams::default()
    });
    let events: Vec<LogSnapshot> = (0..EVENTS)
        .map(|_| {
            let req = m.next_request();
            support::mix_event(&m, &req).0
        })
        .collect();
    let sink = Sink::start().unwrap();
    let config = format!(
        r#"{{"collector":"{}","signing_key":"{}","request_id":true,"workspace":"commerce","batch":{{"flush_interval_ms":100}}}}"#,
        sink.address(),
        support::KEY
    );
    let dir = tempfile::tempdir().unwrap();

    let noop_socket = dir.path().join("noop.socket");
    let mut noop = spawn(
        &release("noop_server"),
        &[noop_socket.as_os_str()],
        &noop_socket,
    );
    let (noop_cpu, noop_wall) = run(noop.id(), &noop_socket, &config, &events);
    let _ = noop.kill();
    let _ = noop.wait();

    let plugin_socket = dir.path().join("kong-looker.socket");
    let mut plugin = spawn(
        &release("kong-looker-plugin"),
        &["-kong-prefix".as_ref(), dir.path().as_os_str()],
        &plugin_socket,
    );
    let (plugin_cpu, plugin_wall) = run(plugin.id(), &plugin_socket, &config, &events);
    let _ = Command::new("kill")
        .args(["-TERM", &plugin.id().to_string()])
        .status();
    let _ = plugin.wait();

    println!("events                   {EVENTS} reference-mix log events, one worker, sequential");
    println!("no-op server   CPU/event {noop_cpu:6.1} µs   wall/event {noop_wall:6.1} µs");
    println!("plugin server  CPU/event {plugin_cpu:6.1} µs   wall/event {plugin_wall:6.1} µs");
    println!(
        "plugin CPU over no-op    {:6.1} µs/event (goal: at most 15)",
        plugin_cpu - noop_cpu
    );
}
