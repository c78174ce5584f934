//! Plugin CPU per log event over a real Unix socket (issue 16's goal: at
//! most 15 µs more than a no-op server driven the same way). One Kong
//! worker (testkit's driver) sends the reference mix, sequentially, to the
//! release `kong-looker-plugin` (capturing, batching, shipping signed
//! batches to a sink) and to the release `noop_server` (`plugin/noop/`, the same
//! two PDK round trips, nothing else). Both servers run at once and get the
//! same blocks of events in turn, so that the machine's drift hits both
//! alike; each block's CPU is the server's time on CPU, in nanoseconds,
//! summed over its threads (`/proc/PID/task/*/schedstat`). The figure is
//! the median of the per-block differences. Ignored by default: it needs
//! release builds.
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
/// Events per block; blocks alternate between the servers.
const BLOCK: usize = 1_000;

/// A process's time on CPU, ns, summed over its threads (live ones: a
/// thread that ended takes its time with it, and these servers' threads
/// live as long as their connection).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
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

/// One server under test, with its own Kong worker (and connections).
struct Server {
    pid: u32,
    kong: KongWorker,
}

impl Server {
    /// CPU µs per event for `events`.
    fn block(&mut self, config: &str, events: &[LogSnapshot]) -> f64 {
        let before = cpu_ns(self.pid);
        for e in events {
            self.kong.log(config, e).unwrap();
        }
        (cpu_ns(self.pid) - before) as f64 / 1e3 / events.len() as f64
    }
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
    let mut noop_child = spawn(
        &release("noop_server"),
        &[noop_socket.as_os_str()],
        &noop_socket,
    );
    let plugin_socket = dir.path().join("kong-looker.socket");
    let mut plugin_child = spawn(
        &release("kong-looker-plugin"),
        &["-kong-prefix".as_ref(), dir.path().as_os_str()],
        &plugin_socket,
    );
    let mut noop = Server {
        pid: noop_child.id(),
        kong: KongWorker::new(&noop_socket, "kong-looker"),
    };
    let mut plugin = Server {
        pid: plugin_child.id(),
        kong: KongWorker::new(&plugin_socket, "kong-looker"),
    };
    for s in [&mut noop, &mut plugin] {
        s.block(&config, &events[..WARM_UP]);
    }
    let mut noop_us = Vec::new();
    let mut plugin_us = Vec::new();
    let mut added = Vec::new();
    for chunk in events.chunks(BLOCK) {
        let n = noop.block(&config, chunk);
        let p = plugin.block(&config, chunk);
        noop_us.push(n);
        plugin_us.push(p);
        added.push(p - n);
    }
    let _ = noop_child.kill();
    let _ = noop_child.wait();
    let _ = Command::new("kill")
        .args(["-TERM", &plugin_child.id().to_string()])
        .status();
    let _ = plugin_child.wait();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let quartiles = |v: &Vec<f64>| (v[v.len() / 4], v[v.len() * 3 / 4]);
    let (noop_cpu, plugin_cpu) = (median(&mut noop_us), median(&mut plugin_us));
    let over = median(&mut added);
    let (q1, q3) = quartiles(&added);

    println!(
        "events                   {EVENTS} reference-mix log events, one worker per server, in alternating blocks of {BLOCK}"
    );
    println!("no-op server   CPU/event {noop_cpu:6.1} µs (median block)");
    println!("plugin server  CPU/event {plugin_cpu:6.1} µs (median block)");
    println!(
        "plugin CPU over no-op    {over:6.1} µs/event, median of {} blocks (quartiles {q1:.1} to {q3:.1}; goal: at most 15)",
        added.len()
    );
}
