//! The real engine: `dist/kong_looker.wasm` in Kong's ngx_wasm_module
//! (both prebuilt builds, `nginx-kong-3.9` and `nginx`, from
//! `../shared/ngx-wasm` or `KONG_LOOKER_NGX_WASM`), real HTTP/1.1 keep-alive
//! clients sending the reference mix, a local upstream answering as each
//! request says, and the real collector on SQLite. Every test reconciles
//! request by request: each answered request is stored once, field for
//! field, or counted as dropped; no client error the upstream was not told
//! to give; no trap, panic, alert, crit or emerg in the error log; worker
//! memory that levels off. Without the engine these tests fail and say how
//! to get it.
//!
//! The figures (records/s per worker, memory) go to stderr: run with
//! `--nocapture` to see them.

#[path = "engine/mod.rs"]
mod harness;
mod pipeline;
mod support;

use std::time::{Duration, Instant};

use harness::net::{SlowProxy, Upstream};
use harness::nginx::Setup;
use harness::traffic::{Shape, plan};
use harness::*;
use support::{Collector, Metrics, TestStore};

/// Late growth allowed per worker, KiB: the filter's buffer is capped at
/// 4 MiB and its dictionary at 1 MiB, so a worker that still grows more
/// than this in the last third of a run is leaking.
const MEMORY_BOUND_KIB: u64 = 8 * 1024;

/// The six reference chains (three teams, guarded and not), pointed at
/// `collector` and signed, as configs for nginx's servers.
fn chains(collector: std::net::SocketAddr, batch: Option<&str>, more: &str) -> Vec<Option<String>> {
    pipeline::chains(collector, batch, more)
        .into_iter()
        .map(Some)
        .collect()
}

/// Everything a test runs: store, collector, upstream, nginx.
struct Rig {
    store: TestStore,
    collector: Collector,
    upstream: Upstream,
    nginx: Nginx,
}

impl Rig {
    fn start(
        engine: Engine,
        workers: u32,
        configs: impl FnOnce(&Collector) -> Vec<Option<String>>,
    ) -> Rig {
        Rig::start_with(engine, workers, configs, true)
    }

    /// [`Rig::start`]; `line`: whether nginx includes `kong_looker.nginx.conf`.
    fn start_with(
        engine: Engine,
        workers: u32,
        configs: impl FnOnce(&Collector) -> Vec<Option<String>>,
        line: bool,
    ) -> Rig {
        let store = TestStore::sqlite();
        let collector = pipeline::collector(&store);
        let upstream = Upstream::start();
        let configs = configs(&collector);
        let mut setup = Setup::new(engine, workers, upstream.port, &configs);
        setup.line = line;
        let nginx = Nginx::start(setup);
        Rig {
            store,
            collector,
            upstream,
            nginx,
        }
    }

    /// The checks every run ends with: no client error, a clean error log,
    /// memory that levels off; returns the memory figures.
    fn finish(&self, run: &Run, memory: Memory, label: &str) -> Vec<harness::MemoryFigures> {
        let series = memory.finish();
        run.assert_no_client_errors(&self.nginx.log_tail(30));
        self.nginx.assert_clean_log();
        let figures = assert_memory_levels_off(&series, MEMORY_BOUND_KIB);
        for f in &figures {
            eprintln!(
                "engine figures: {label}: worker {} RSS first {} KiB, peak {} KiB, last {} KiB, \
                 late growth {} KiB over {} samples",
                f.pid, f.first_kib, f.peak_kib, f.last_kib, f.late_growth_kib, f.samples
            );
        }
        figures
    }
}

/// The reference mix through `workers` workers of `engine`: every request
/// stored once with its fields, nothing dropped. With one worker nginx
/// lacks `kong_looker.nginx.conf` and the filter reads nginx's figures one
/// by one; with two it includes it, and the filter reads them in one call.
fn the_mix(engine: Engine, workers: u32, seed: u64) {
    let _one = exclusive();
    let line = workers > 1;
    let rig = Rig::start_with(engine, workers, |c| chains(c.addr, None, ""), line);
    let memory = Memory::sample(rig.nginx.pid(), Duration::from_millis(100));
    let n = 3000;
    let mut run = Run::new(plan(n, seed, Shape::MIX), rig.nginx.ports());
    run.drive(n, 6, 1, Duration::from_secs(120), || ());
    let books = reconcile(&rig.store, &run);
    let label = format!("mix {} x{workers}", engine.binary_name());
    rig.finish(&run, memory, &label);
    assert_balanced(&books, &rig.nginx);
    assert_eq!((books.stored, books.dropped), (n as u64, 0), "{books:?}");
    assert!(
        books.producers >= u64::from(workers),
        "each worker shipped its own batches: {books:?}"
    );
    // Each chain says once whether it found the line; with the include
    // nothing is said, so every figure checked above came from it.
    let notes = rig
        .nginx
        .log()
        .lines()
        .filter(|l| l.contains("$kong_looker_log"))
        .count();
    if line {
        assert_eq!(notes, 0, "{}", rig.nginx.log_tail(20));
    } else {
        assert!(notes >= 1, "no note of the missing include");
    }
    eprintln!(
        "engine figures: {label}: {n} requests in {:?}, {} batches from {} producers, {} resent",
        run.busy, books.batches, books.producers, run.resent
    );
}

#[test]
fn the_mix_in_kong_3_9_one_worker() {
    the_mix(Engine::Kong39, 1, 21);
}

#[test]
fn the_mix_in_kong_3_9_two_workers() {
    the_mix(Engine::Kong39, 2, 22);
}

#[test]
fn the_mix_in_the_newer_engine_one_worker() {
    the_mix(Engine::Newer, 1, 23);
}

#[test]
fn the_mix_in_the_newer_engine_two_workers() {
    the_mix(Engine::Newer, 2, 24);
}

/// The collector is away for longer than the filter's buffer lasts (64 KiB
/// per worker, batches retried for 3 s): the oldest records are dropped and
/// counted, the counts reach the collector once it is back, and the books
/// balance exactly. Traffic never notices.
fn collector_away(engine: Engine) {
    let _one = exclusive();
    let small =
        r#"{"flush_interval_ms":100,"max_bytes":16384,"max_records":200,"max_retry_age_ms":3000}"#;
    let mut rig = Rig::start(engine, 2, |c| {
        chains(c.addr, Some(small), r#""max_buffer_bytes":65536"#)
    });
    let memory = Memory::sample(rig.nginx.pid(), Duration::from_millis(200));
    let mut run = Run::new(plan(20_000, 31, Shape::LOAD), rig.nginx.ports());
    run.drive(600, 4, 1, Duration::from_secs(60), || ());
    // Nothing in flight when it goes: every call before ends cleanly.
    assert_eq!(
        settle(&rig.store, 600, Duration::from_secs(30), None),
        (600, 0)
    );
    rig.collector.kill9();
    let away = Instant::now();
    // Enough records to overflow the buffer, and long enough for the
    // first batches to pass their retry age.
    run.drive(16_000, 4, 4, Duration::from_secs(60), || ());
    if let Some(rest) = Duration::from_secs(6).checked_sub(away.elapsed()) {
        std::thread::sleep(rest);
    }
    rig.collector.restart();
    let outage = away.elapsed();
    run.drive(1000, 4, 1, Duration::from_secs(60), || ());
    let books = reconcile(&rig.store, &run);
    let label = format!("collector away, {} x2", engine.binary_name());
    rig.finish(&run, memory, &label);
    assert_balanced(&books, &rig.nginx);
    assert!(books.dropped > 0, "the buffer overflowed: {books:?}");
    let errors = rig.nginx.error_lines();
    let failed: Vec<&String> = errors
        .iter()
        .filter(|l| l.contains("dispatch failed"))
        .collect();
    let by_reason = rig
        .store
        .rows("SELECT sum(drops_buffer_full), sum(drops_dispatch_failed) FROM kong_looker_batches");
    eprintln!(
        "engine figures: {label} for {outage:?}: {books:?} (buffer_full, dispatch_failed: \
         {:?}), {} `dispatch failed` lines, such as {:?}; {} [error] lines in all",
        by_reason[0],
        failed.len(),
        failed.first(),
        errors.len()
    );
}

#[test]
fn a_collector_away_past_the_buffer_costs_counted_drops_only_in_kong_3_9() {
    collector_away(Engine::Kong39);
}

#[test]
fn a_collector_away_past_the_buffer_costs_counted_drops_only_in_the_newer_engine() {
    collector_away(Engine::Newer);
}

/// A batch the collector committed but could not answer (it died holding
/// the reply), which the filter then gives up on past its retry age, is
/// counted as dropped by the filter and stored by the collector: the books
/// must still balance, each record stored once or counted once.
#[test]
fn a_batch_that_landed_before_the_collector_died_is_not_counted_twice() {
    let _one = exclusive();
    let small = r#"{"flush_interval_ms":100,"max_records":100,"max_retry_age_ms":3000}"#;
    let mut proxy = None;
    let mut rig = Rig::start(Engine::Kong39, 1, |c| {
        let p = SlowProxy::start(c.addr, 0);
        let configs = chains(p.addr, Some(small), r#""timeout_ms":1000"#);
        proxy = Some(p);
        configs
    });
    let proxy = proxy.unwrap();
    let memory = Memory::sample(rig.nginx.pid(), Duration::from_millis(200));
    let mut run = Run::new(plan(5000, 36, Shape::LOAD), rig.nginx.ports());
    run.drive(600, 4, 1, Duration::from_secs(60), || ());
    assert_eq!(
        settle(&rig.store, 600, Duration::from_secs(30), None),
        (600, 0)
    );
    // The collector commits the next batches, but their answers are held
    // back; then it dies.
    proxy
        .delay_ms
        .store(30_000, std::sync::atomic::Ordering::Relaxed);
    run.drive(300, 2, 1, Duration::from_secs(60), || ());
    let (held, _) = settle(&rig.store, 601, Duration::from_secs(20), None);
    assert!(held > 600, "a batch landed with its answer held back");
    rig.collector.kill9();
    proxy
        .delay_ms
        .store(0, std::sync::atomic::Ordering::Relaxed);
    // Past the retry age, with traffic.
    let away = Instant::now();
    run.drive(2000, 2, 1, Duration::from_secs(60), || ());
    if let Some(rest) = Duration::from_secs(6).checked_sub(away.elapsed()) {
        std::thread::sleep(rest);
    }
    rig.collector.restart();
    run.drive(600, 4, 1, Duration::from_secs(60), || ());
    let books = reconcile(&rig.store, &run);
    rig.finish(&run, memory, "landed then abandoned, nginx-kong-3.9 x1");
    eprintln!("engine figures: landed then abandoned: {books:?} ({held} stored when it died)");
    assert_balanced(&books, &rig.nginx);
}

/// The collector answers more slowly than the filter's timeout (500 ms):
/// each call times out after the collector committed it, is retried under
/// the same sequence number, and lands once; nothing is lost or doubled.
#[test]
fn a_collector_slower_than_the_timeout_lands_each_record_once() {
    let _one = exclusive();
    let mut proxy = None;
    let rig = Rig::start(Engine::Kong39, 2, |c| {
        let p = SlowProxy::start(c.addr, 1500);
        // Half the chains name another Host: two destinations, so two
        // outboxes per worker, which must still keep one call in flight
        // between them (a second leaks a connection slot in the engine).
        let configs = chains(p.addr, None, r#""timeout_ms":500"#)
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                c.map(|c| {
                    if i % 2 == 1 {
                        c.replacen('{', r#"{"collector_host":"lane-b.test","#, 1)
                    } else {
                        c
                    }
                })
            })
            .collect();
        proxy = Some(p);
        configs
    });
    let proxy = proxy.unwrap();
    let memory = Memory::sample(rig.nginx.pid(), Duration::from_millis(200));
    let mut run = Run::new(plan(3000, 32, Shape::MIX), rig.nginx.ports());
    // About four seconds of slow answers.
    run.drive(2000, 2, 1, Duration::from_secs(60), || ());
    let slow_for = run.busy;
    proxy
        .delay_ms
        .store(0, std::sync::atomic::Ordering::Relaxed);
    run.drive(1000, 4, 1, Duration::from_secs(60), || ());
    let books = reconcile(&rig.store, &run);
    rig.finish(&run, memory, "slow collector, nginx-kong-3.9 x2");
    assert_balanced(&books, &rig.nginx);
    assert_eq!((books.stored, books.dropped), (3000, 0), "{books:?}");
    let duplicates = rig
        .collector
        .metric("kong_looker_collector_batches_duplicate_total");
    assert!(
        duplicates > 0.0,
        "calls timed out after the collector committed them, and came again"
    );
    eprintln!(
        "engine figures: slow collector for {slow_for:?}: {books:?}, {duplicates} duplicate batches"
    );
}

/// `nginx -s reload` under traffic: the clients see nothing but their
/// answers; new workers are new producers; nothing is stored twice; the
/// only records that may be missing are those the old workers still held
/// when they exited (Kong has no hook at worker shutdown), so every
/// missing request was answered around the reload.
#[test]
fn a_reload_under_traffic_loses_only_what_old_workers_held() {
    let _one = exclusive();
    let rig = Rig::start(Engine::Kong39, 2, |c| chains(c.addr, None, ""));
    let memory = Memory::sample(rig.nginx.pid(), Duration::from_millis(100));
    let n = 4000;
    let mut run = Run::new(plan(n, 33, Shape::MIX), rig.nginx.ports());
    let (from, to) = run.drive(n, 6, 1, Duration::from_secs(120), || {
        std::thread::sleep(Duration::from_millis(800));
        let from = Instant::now();
        rig.nginx.reload();
        (from, Instant::now())
    });
    // What the old workers held never comes: wait for quiet.
    let books = reconcile_with(&rig.store, &run, None, Some(Duration::from_secs(3)));
    rig.finish(&run, memory, "reload, nginx-kong-3.9 x2");
    assert_eq!(books.dropped, 0, "{books:?}");
    let at: std::collections::HashMap<&str, Instant> = run
        .outcomes
        .iter()
        .map(|o| (o.request_id.as_str(), o.at))
        .collect();
    let outside: Vec<&String> = books
        .missing
        .iter()
        .filter(|id| {
            let t = at[id.as_str()];
            t + Duration::from_secs(1) < from || t > to + Duration::from_secs(1)
        })
        .collect();
    assert!(
        outside.is_empty(),
        "{} of {} missing requests were answered away from the reload, e.g. {:?}",
        outside.len(),
        books.lost,
        &outside[..outside.len().min(3)]
    );
    // Old workers before, new ones after: at least one of each shipped
    // (the kernel may hand every connection to one worker).
    assert!(
        books.producers >= 2,
        "old and new workers shipped batches: {books:?}"
    );
    eprintln!(
        "engine figures: reload took {:?}: {books:?} (lost {} at the reload), {} resent",
        to - from,
        books.lost,
        run.resent
    );
}

/// A chain with a config that is not valid captures nothing: the error log
/// names the field, its traffic flows as without the filter, and the other
/// chains capture as usual.
#[test]
fn a_bad_config_leaves_its_chain_inert_and_traffic_flowing() {
    let _one = exclusive();
    let bad = 0;
    let rig = Rig::start(Engine::Kong39, 2, |c| {
        let mut configs = chains(c.addr, None, "");
        configs[bad] = Some(format!(
            r#"{{"collector":"{}","signing_key":"{}","workspace":"commerce","batch":{{"max_records":0}}}}"#,
            c.addr,
            pipeline::KEY
        ));
        configs
    });
    let memory = Memory::sample(rig.nginx.pid(), Duration::from_millis(100));
    let n = 2000;
    let mut run = Run::new(plan(n, 34, Shape::MIX), rig.nginx.ports());
    run.drive(n, 6, 1, Duration::from_secs(120), || ());
    let on_bad = run
        .outcomes
        .iter()
        .filter(|o| run.plan[o.plan].chain == bad)
        .count() as u64;
    assert!(on_bad > 100, "the bad chain had traffic");
    // Wait for the good chains' records, then check the bad one's are not there.
    let books = reconcile_with(&rig.store, &run, Some(n as u64 - on_bad), None);
    rig.finish(&run, memory, "bad config, nginx-kong-3.9 x2");
    assert_eq!(books.dropped, 0, "{books:?}");
    assert_eq!(books.stored, n as u64 - on_bad, "{books:?}");
    let chain_of: std::collections::HashMap<&str, usize> = run
        .outcomes
        .iter()
        .map(|o| (o.request_id.as_str(), run.plan[o.plan].chain))
        .collect();
    assert!(
        books.missing.iter().all(|id| chain_of[id.as_str()] == bad),
        "only the bad chain's requests are missing"
    );
    let log = rig.nginx.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("config refused"))
        .collect();
    assert!(
        !refused.is_empty() && refused.iter().all(|l| l.contains("batch.max_records")),
        "the error log names the field: {refused:?}\n{}",
        rig.nginx.log_tail(20)
    );
    eprintln!("engine figures: bad config: {books:?}; {}", refused[0]);
}

/// Sustained load through one worker for ten seconds, as fast as the
/// clients can send (pipelined keep-alive). The goal is 30,000 records/s
/// per worker with no drop; the test reports the rate and asserts no client
/// error and books that balance (drops, if any, counted).
fn sustained_load(engine: Engine) {
    let _one = exclusive();
    let rig = Rig::start(engine, 1, |c| chains(c.addr, None, ""));
    let memory = Memory::sample(rig.nginx.pid(), Duration::from_millis(250));
    let mut run = Run::new(plan(20_000, 35, Shape::LOAD), rig.nginx.ports());
    // Warm up (Wasmtime, connections), then measure.
    run.drive(2000, 3, 8, Duration::from_secs(30), || ());
    let before = (run.outcomes.len(), run.busy);
    let worker = rig.nginx.workers()[0];
    let cpu_before = cpu_time(worker);
    run.drive(10_000_000, 3, 16, Duration::from_secs(10), || ());
    let cpu = (cpu_time(worker) - cpu_before).as_secs_f64();
    let sent = run.outcomes.len() - before.0;
    let wall = (run.busy - before.1).as_secs_f64();
    let rate = sent as f64 / wall;
    let books = reconcile(&rig.store, &run);
    let label = format!("load {} x1", engine.binary_name());
    rig.finish(&run, memory, &label);
    eprintln!(
        "engine figures: {label}: {rate:.0} records/s per worker over {sent} requests \
         (goal 30000, floor 8000); the worker was busy {:.0}% of the time, so {:.0} records \
         per worker CPU second; {books:?}; upstream served {}",
        100.0 * cpu / wall,
        sent as f64 / cpu.max(0.001),
        rig.upstream
            .served
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    assert_balanced(&books, &rig.nginx);
}

#[test]
fn sustained_load_in_kong_3_9() {
    sustained_load(Engine::Kong39);
}

#[test]
fn sustained_load_in_the_newer_engine() {
    sustained_load(Engine::Newer);
}

/// nginx answers a request in its rewrite phase (a `return`, as a redirect
/// or a Lua plugin's early exit would): `on_request_headers` never runs,
/// and the log phase still records the request whole.
#[test]
fn a_request_answered_in_the_rewrite_phase_is_recorded_whole() {
    use std::io::{Read, Write};
    let _one = exclusive();
    let rig = Rig::start(Engine::Kong39, 1, |c| chains(c.addr, None, ""));
    let port = rig.nginx.ports()[0];
    let id = "5b1e4a7f2c9d4e0f8a6b3c2d1e0f9a8b";
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "DELETE {path}?x=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.5.0\r\n\
         X-Kong-Request-Id: {id}\r\nConnection: close\r\n\r\n",
        path = harness::nginx::REWRITE_PATH
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 301"), "{answer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let row = loop {
        let rows = rig.store.rows(&format!(
            "SELECT method, host, path, status, agent_name, request_bytes > 0, response_bytes > 0 \
             FROM kong_looker_requests WHERE request_id = '{id}'"
        ));
        if let Some(r) = rows.into_iter().next() {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request never landed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    assert_eq!(
        row.iter().map(text).collect::<Vec<_>>(),
        [
            "DELETE",
            "api.example.com",
            harness::nginx::REWRITE_PATH,
            "301",
            "curl",
            "1",
            "1"
        ],
        "{row:?}"
    );
    rig.nginx.assert_clean_log();
}

/// In Kong's real engine, the filter reads ai-proxy's model header (and the
/// semantic cache's status) in the log phase when `ai_model_header` is on.
#[test]
fn the_llm_model_header_is_read_in_the_log_phase() {
    use std::io::{Read, Write};
    let _one = exclusive();
    let rig = Rig::start(Engine::Kong39, 1, |c| chains(c.addr, None, ""));
    let port = rig.nginx.ports()[0];
    let id = "5b1e4a7f2c9d4e0f8a6b3c2d1e0fa11a";
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 2\r\n\
         X-Answer: 200 40 0\r\nX-Kong-Request-Id: {id}\r\nConnection: close\r\n\r\n{{}}",
        path = harness::nginx::LLM_PATH
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("X-Kong-LLM-Model: openai/gpt-4o"),
        "{answer}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let row = loop {
        let rows = rig.store.rows(&format!(
            "SELECT ai_provider, ai_request_model, ai_cache_status, ai_calls, ai_total_tokens \
             FROM kong_looker_requests WHERE request_id = '{id}'"
        ));
        if let Some(r) = rows.into_iter().next() {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the request never landed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    assert_eq!(
        row.iter().map(text).collect::<Vec<_>>(),
        ["openai", "gpt-4o", "miss", "0", "0"],
        "{row:?}"
    );
    rig.nginx.assert_clean_log();
}
