//! The real engine for the engine tests: Kong's ngx_wasm_module in nginx
//! (`../shared/ngx-wasm/bin/nginx-kong-3.9` and `bin/nginx`), running the
//! real `dist/kong_looker.wasm`, with a local upstream, HTTP/1.1 keep-alive
//! clients that send the reference mix, worker memory sampled from /proc,
//! and the reconciliation of every answered request against the store.
#![allow(dead_code)]

pub mod net;
pub mod nginx;
pub mod traffic;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::TestStore;
pub use nginx::{Engine, Nginx};
pub use traffic::{Outcome, Run};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("collector/ is in the repository")
        .to_path_buf()
}

/// `dist/kong_looker.wasm`, refusing a build older than the sources so that
/// a test never passes against stale code. Checked once per test binary,
/// as the filter's own test support does.
pub fn wasm() -> PathBuf {
    static WASM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    WASM.get_or_init(kong_looker_testsupport::fresh_wasm)
        .clone()
}

/// One engine test at a time: they measure throughput and memory, and
/// each runs several processes on a small machine.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the store holds against what the clients were answered.
#[derive(Default)]
pub struct Books {
    /// Requests the clients got a response for.
    pub answered: u64,
    /// Filter rows in the table.
    pub stored: u64,
    /// Drops the producers reported, all reasons.
    pub dropped: u64,
    /// Answered requests neither stored nor counted (only a reload may
    /// leave some: what the old workers still held).
    pub lost: u64,
    /// Answered request ids that are not in the table.
    pub missing: Vec<String>,
    /// Producers (Wasm instances) that sent batches.
    pub producers: u64,
    /// Batches committed.
    pub batches: u64,
}

impl std::fmt::Debug for Books {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "answered {}, stored {}, dropped {}, lost {}, {} batches from {} producers",
            self.answered, self.stored, self.dropped, self.lost, self.batches, self.producers
        )?;
        if !self.missing.is_empty() {
            write!(
                f,
                ", missing e.g. {:?}",
                &self.missing[..self.missing.len().min(3)]
            )?;
        }
        Ok(())
    }
}

/// Waits until `target` records are stored or counted as dropped, or
/// (with `quiet`) until the counts stop changing for that long, bounded by
/// `within`; then a moment more for anything extra.
pub fn settle(
    store: &TestStore,
    target: u64,
    within: Duration,
    quiet: Option<Duration>,
) -> (u64, u64) {
    let until = Instant::now() + within;
    let mut last = (u64::MAX, u64::MAX);
    let mut changed = Instant::now();
    loop {
        let now = store.stored_and_dropped();
        if now != last {
            last = now;
            changed = Instant::now();
        }
        let still = quiet.is_some_and(|q| changed.elapsed() >= q);
        if now.0 + now.1 >= target || still || Instant::now() >= until {
            // A late duplicate or a late count would show here.
            std::thread::sleep(Duration::from_millis(700));
            return store.stored_and_dropped();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Columns compared field for field, in `OwnedRow` order.
const COLUMNS: &str = "request_id, workspace, route_id, route_name, service_id, service_name, \
     method, host, path, status, response_source, request_bytes, response_bytes, auth_method, \
     trust, anonymous, consumer_id, consumer_username, consumer_custom_id, credential, \
     consumer_groups, subject, issuer, client_id, client_address, agent_category, agent_name, \
     trace_id, sample_weight, latency_total_us, latency_upstream_us";

/// Checks the store against the run: every stored row is a request that
/// was sent, stored once, with the fields the bare engine supplies equal to
/// what was sent and the latencies within what the upstream was told; and
/// `answered = stored + dropped + lost`. The caller asserts on `lost`.
pub fn reconcile(store: &TestStore, run: &Run) -> Books {
    reconcile_with(store, run, None, None)
}

/// [`reconcile`], waiting for `target` records (all answered when `None`)
/// or for `quiet` without change.
pub fn reconcile_with(
    store: &TestStore,
    run: &Run,
    target: Option<u64>,
    quiet: Option<Duration>,
) -> Books {
    let answered = run.answered();
    let target = target.unwrap_or(answered.len() as u64);
    let (stored, dropped) = settle(store, target, Duration::from_secs(60), quiet);
    let by_id: HashMap<&str, &Outcome> = run
        .outcomes
        .iter()
        .map(|o| (o.request_id.as_str(), o))
        .collect();
    let rows = store.rows(&format!(
        "SELECT {COLUMNS} FROM kong_looker_requests WHERE origin = 'filter'"
    ));
    assert_eq!(rows.len() as u64, stored);
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let mut mismatches = Vec::new();
    let mut differing = 0;
    let mut by_column: BTreeMap<&str, usize> = BTreeMap::new();
    let mut clocks_apart = 0usize;
    for r in &rows {
        let id = r[0].as_deref().expect("filter rows carry the request id");
        assert!(seen.insert(id.to_owned()), "{id} is stored twice");
        let o = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{id} is stored but was never sent"));
        let p = &run.plan[o.plan];
        let want = p.expected_columns(o);
        let got: Vec<Option<String>> = r[..want.len()].to_vec();
        if got != want {
            differing += 1;
            for (c, _) in COLUMNS
                .split(',')
                .map(str::trim)
                .zip(got.iter().zip(&want))
                .filter(|(_, (g, w))| g != w)
            {
                *by_column.entry(c).or_default() += 1;
            }
        }
        if got != want && mismatches.len() < 5 {
            let diff: Vec<String> = COLUMNS
                .split(',')
                .map(str::trim)
                .zip(got.iter().zip(&want))
                .filter(|(_, (g, w))| g != w)
                .map(|(c, (g, w))| format!("{c}: stored {g:?}, sent {w:?}"))
                .collect();
            mismatches.push(format!("request {id}: {}", diff.join("; ")));
        }
        // Latencies: nginx's own figures, in whole milliseconds, at least
        // the delay the upstream was told to take.
        let total: u64 = r[want.len()].as_deref().unwrap().parse().unwrap();
        let upstream: Option<u64> = r[want.len() + 1].as_deref().map(|v| v.parse().unwrap());
        let delay_us = u64::from(p.answer.delay_ms) * 1000;
        // nginx times the request on the wall clock and the upstream on the
        // monotonic one, and clamps a negative request time at 0: after the
        // wall clock steps back, its total can fall below the delay and
        // below its own upstream time. Counted, and allowed only when rare.
        let stepped = upstream.is_some_and(|u| u + 1000 >= delay_us && u > total + 1000);
        if stepped {
            clocks_apart += 1;
        } else if (total + 1000 < delay_us || total > delay_us + 30_000_000) && mismatches.len() < 5
        {
            mismatches.push(format!(
                "request {id}: latency_total_us {total} for a delay of {delay_us} us"
            ));
        }
        match upstream {
            // At least the delay, and within the total unless it stepped.
            Some(u) if u + 1000 >= delay_us => {}
            _ if mismatches.len() < 5 => mismatches.push(format!(
                "request {id}: latency_upstream_us {upstream:?} for a delay of {delay_us} us \
                 and a total of {total} us"
            )),
            _ => {}
        }
    }
    // A step touches the requests in flight then: a few dozen at most here.
    assert!(
        clocks_apart <= 32 + rows.len() / 10_000,
        "{clocks_apart} of {} rows have nginx's upstream time above its total: more than \
         a step of the wall clock explains",
        rows.len()
    );
    assert!(
        mismatches.is_empty(),
        "{differing} of {} stored rows differ from what was sent (by column: {by_column:?}), \
         such as:\n{}",
        rows.len(),
        mismatches.join("\n")
    );
    let missing: Vec<String> = answered
        .iter()
        .filter(|o| !seen.contains(&o.request_id))
        .map(|o| o.request_id.clone())
        .collect();
    assert!(
        stored + dropped <= answered.len() as u64,
        "stored {stored} + dropped {dropped} exceed the {} answered requests: {} records \
         are counted as dropped yet stored (a batch the producer gave up on had landed)",
        answered.len(),
        stored + dropped - answered.len() as u64
    );
    // No unexplained gap: a producer's batches run 1..=max, unless it
    // reported dropping records.
    let mut producers = 0;
    for row in store.rows(
        "SELECT instance_id, count(*), max(sequence), \
         sum(drops_buffer_full + drops_dispatch_failed) FROM kong_looker_batches \
         GROUP BY instance_id",
    ) {
        producers += 1;
        let explained = row[3].as_deref() != Some("0");
        assert!(
            row[1] == row[2] || explained,
            "producer {:?} has an unexplained gap: {row:?}",
            row[0]
        );
    }
    Books {
        answered: answered.len() as u64,
        stored,
        dropped,
        lost: answered.len() as u64 - stored - dropped,
        missing,
        producers,
        batches: store.count("SELECT count(*) FROM kong_looker_batches") as u64,
    }
}

/// Asserts the books balance exactly: every answered request is stored once
/// or counted as dropped.
pub fn assert_balanced(books: &Books, nginx: &Nginx) {
    assert_eq!(
        books.lost,
        0,
        "answered {} = stored {} + dropped {} + {} neither (e.g. {:?}); error log:\n{}",
        books.answered,
        books.stored,
        books.dropped,
        books.lost,
        &books.missing[..books.missing.len().min(3)],
        nginx.log_tail(40)
    );
}

/// CPU time a process has used (user and system), from /proc.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// Worker memory, sampled from /proc while traffic runs.
pub struct Memory {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<BTreeMap<u32, Vec<u64>>>>,
}

impl Memory {
    /// Samples the RSS of `master`'s workers every `every`, by pid.
    pub fn sample(master: u32, every: Duration) -> Memory {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut series: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
            // Bounded: an hour of samples at most.
            for _ in 0..(3_600_000 / every.as_millis().max(1)) {
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                for pid in nginx::workers(master) {
                    if let Some(kib) = nginx::rss_kib(pid) {
                        series.entry(pid).or_default().push(kib);
                    }
                }
                std::thread::sleep(every);
            }
            series
        });
        Memory {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops sampling; the RSS series of each worker, in KiB.
    pub fn finish(mut self) -> BTreeMap<u32, Vec<u64>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

/// How a worker's memory went: first, peak, last, and how much the last
/// third of the samples grew over the peak of the first two thirds.
#[derive(Debug)]
pub struct MemoryFigures {
    /// Worker pid.
    pub pid: u32,
    /// Samples taken.
    pub samples: usize,
    /// First sample, KiB.
    pub first_kib: u64,
    /// Largest sample, KiB.
    pub peak_kib: u64,
    /// Last sample, KiB.
    pub last_kib: u64,
    /// Growth of the last third over the first two thirds' peak, KiB.
    pub late_growth_kib: u64,
}

/// Asserts that each worker's memory levels off: the last third of its
/// samples grows less than `bound_kib` over the peak of the first two
/// thirds. Workers sampled fewer than 9 times are left out (a reload's old
/// workers); at least one worker must be judged.
pub fn assert_memory_levels_off(
    series: &BTreeMap<u32, Vec<u64>>,
    bound_kib: u64,
) -> Vec<MemoryFigures> {
    let mut figures = Vec::new();
    for (pid, s) in series {
        if s.len() < 9 {
            continue;
        }
        let cut = s.len() * 2 / 3;
        let early = *s[..cut].iter().max().unwrap();
        let late = *s[cut..].iter().max().unwrap();
        figures.push(MemoryFigures {
            pid: *pid,
            samples: s.len(),
            first_kib: s[0],
            peak_kib: early.max(late),
            last_kib: *s.last().unwrap(),
            late_growth_kib: late.saturating_sub(early),
        });
    }
    assert!(
        !figures.is_empty(),
        "no worker was sampled long enough: {series:?}"
    );
    for f in &figures {
        assert!(
            f.late_growth_kib < bound_kib,
            "worker {} memory keeps growing: {f:?}",
            f.pid
        );
    }
    figures
}
