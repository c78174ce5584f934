//! [`Kong`]: a node with N workers running one filter, and the API tests and
//! benches drive it with: requests, the clock, and what the filter did.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::{Config, Engine, Linker, Module};

use crate::clock::Clock;
use crate::dispatch::DispatchRecord;
use crate::host::{self, LogLine};
use crate::profile::Profile;
use crate::request::{Outcome, Request};
use crate::shared::{Metric, Shared};
use crate::worker::{Env, TrapRecord, Worker};

/// A compiled filter, ready to load into any number of nodes.
#[derive(Clone)]
pub struct Filter {
    engine: Engine,
    module: Module,
    linker: Arc<Linker<host::HostState>>,
    name: String,
}

impl Filter {
    /// Compiles a `.wasm` file; the filter's name is the file's stem, as
    /// Kong names filters found in `wasm_filters_path`.
    pub fn load(path: impl AsRef<Path>) -> wasmtime::Result<Self> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| wasmtime::format_err!("{}: {e}", path.display()))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Filter::from_bytes(&name, &bytes)
    }

    /// Compiles a module from bytes under `name`.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> wasmtime::Result<Self> {
        let engine = Engine::new(&Config::new())?;
        let module = Module::new(&engine, bytes)?;
        refuse_missing_exports(name, &module)?;
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker)?;
        // Anything else ngx_wasm_module does not provide traps when called.
        linker.define_unknown_imports_as_traps(&module)?;
        Ok(Filter {
            engine,
            module,
            linker: Arc::new(linker),
            name: name.to_owned(),
        })
    }

    /// The filter's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What ngx_wasm_module refuses when a worker loads the filter (an `emerg`;
/// the worker exits with a fatal code, is not respawned, and nothing is
/// served): a filter without an allocator, or without one of the three
/// callbacks that set up its root contexts. Every other callback it calls
/// unchecked, and a missing one crashes the worker when its step comes
/// (`worker::call`).
fn refuse_missing_exports(name: &str, module: &Module) -> wasmtime::Result<()> {
    let has = |export: &str| module.get_export(export).is_some();
    if !has("malloc") && !has("proxy_on_memory_allocate") {
        wasmtime::bail!(
            "\"{name}\" filter missing malloc (ngx_wasm_module's workers exit at start)"
        );
    }
    let setup = [
        "proxy_on_context_create",
        "proxy_on_vm_start",
        "proxy_on_configure",
    ];
    if let Some(missing) = setup.iter().find(|e| !has(e)) {
        wasmtime::bail!(
            "\"{name}\" filter missing one of: on_context_create, on_vm_start, on_plugin_start \
             (no {missing}; ngx_wasm_module's workers exit at start)"
        );
    }
    Ok(())
}

/// Builds a [`Kong`] node.
pub struct KongBuilder {
    filter: Filter,
    profile: Profile,
    workers: usize,
    chains: Vec<Vec<u8>>,
    start_ms: u64,
    shm_zones: Vec<String>,
    any_zone: bool,
    queue_capacity: usize,
    maps: Vec<(String, String)>,
}

impl KongBuilder {
    /// Defines nginx variable `$name` as `value`, as a `map` in Kong's
    /// nginx config would (`nginx_http_include`): `$variables` in `value`
    /// are worked out when a filter reads `ngx.name`.
    pub fn nginx_map(mut self, name: &str, value: &str) -> Self {
        self.maps.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Number of workers (default 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Adds a filter chain with this JSON configuration; chains are
    /// numbered from 0 in the order added.
    pub fn chain(mut self, config: &str) -> Self {
        self.chains.push(config.as_bytes().to_vec());
        self
    }

    /// Starts the clock at `ms` (Unix milliseconds).
    pub fn start_at_ms(mut self, ms: u64) -> Self {
        self.start_ms = ms;
        self
    }

    /// Declares an `shm_kv` zone; without `any_zone`, keys outside declared
    /// zones trap.
    pub fn shm_zone(mut self, zone: &str) -> Self {
        self.shm_zones.push(zone.to_owned());
        self
    }

    /// Whether the `*` zone exists (`nginx_wasm_shm_kv`); default yes.
    pub fn any_zone(mut self, yes: bool) -> Self {
        self.any_zone = yes;
        self
    }

    /// Capacity of each shared queue, in items.
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n;
        self
    }

    /// Starts the node: every worker instantiates the filter and runs its
    /// root contexts' `on_vm_start` and `on_configure`.
    pub fn build(self) -> Kong {
        let shared = Shared {
            zones: self.shm_zones,
            any_zone: self.any_zone,
            queue_capacity: self.queue_capacity,
            ..Shared::default()
        };
        let env = Env {
            engine: self.filter.engine.clone(),
            module: self.filter.module.clone(),
            linker: self.filter.linker.clone(),
            profile: self.profile,
            filter_name: self.filter.name.clone(),
            clock: Clock::at_ms(self.start_ms),
            shared: Arc::new(Mutex::new(shared)),
            logs: Arc::default(),
            records: Arc::default(),
            traps: Arc::default(),
            chains: if self.chains.is_empty() {
                vec![Vec::new()]
            } else {
                self.chains
            },
            maps: Arc::new(self.maps),
        };
        let mut workers: Vec<Worker> = (0..self.workers)
            .map(|id| Worker::new(id, env.clone()))
            .collect();
        for w in &mut workers {
            // A failure is recorded as a trap; the next request retries.
            let _ = w.ensure_started();
        }
        Kong { env, workers }
    }
}

/// A Kong node running one filter in N workers. See the crate docs.
pub struct Kong {
    env: Env,
    workers: Vec<Worker>,
}

impl Kong {
    /// A node for `filter` imitating `profile`.
    pub fn builder(filter: &Filter, profile: Profile) -> KongBuilder {
        KongBuilder {
            filter: filter.clone(),
            profile,
            workers: 1,
            chains: Vec::new(),
            start_ms: 1_767_614_400_000,
            shm_zones: Vec::new(),
            any_zone: true,
            queue_capacity: 1024,
            maps: Vec::new(),
        }
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.env.profile
    }

    /// The shared clock.
    pub fn clock(&self) -> &Clock {
        &self.env.clock
    }

    /// Number of workers.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Runs `req` on worker `worker` (modulo the worker count).
    pub fn request(&mut self, worker: usize, req: &Request) -> Outcome {
        let n = self.workers.len();
        match self.workers.get_mut(worker % n) {
            Some(w) => w.request(req),
            None => Outcome {
                status: 500,
                trap: Some("no workers".into()),
                local_response: None,
                paused: false,
                crashed: false,
            },
        }
    }

    /// Moves the clock forward by `by`, firing every tick that falls due on
    /// the way, in time order, and after each step delivering the HTTP calls
    /// that finished (a call's response arrives on the next turn).
    pub fn advance(&mut self, by: Duration) {
        let target = self
            .env
            .clock
            .now_ns()
            .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        loop {
            for w in &mut self.workers {
                let _ = w.ensure_started();
            }
            let next = self.workers.iter().filter_map(Worker::next_tick_ns).min();
            match next {
                Some(t) if t <= target => {
                    self.env.clock.set_ns(t);
                    self.turn();
                    for w in &mut self.workers {
                        w.fire_ticks(t);
                    }
                }
                _ => break,
            }
        }
        self.env.clock.set_ns(target);
        self.turn();
    }

    /// Delivers every finished HTTP call without moving the clock.
    pub fn turn(&mut self) {
        for w in &mut self.workers {
            w.deliver_calls();
        }
    }

    /// Every line the filter logged, all workers, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        self.env.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every HTTP call the filter made.
    pub fn dispatches(&self) -> Vec<DispatchRecord> {
        self.env
            .records
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Every trap.
    pub fn traps(&self) -> Vec<TrapRecord> {
        self.env.traps.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// How many times worker `worker` crashed: did what kills an nginx
    /// worker with SIGSEGV in ngx_wasm_module (reading `plugin_name` in a
    /// root context, dispatching from a root's `on_http_call_response`).
    pub fn crashes(&self, worker: usize) -> usize {
        self.env.traps.lock().map_or(0, |t| {
            t.iter().filter(|r| r.crash && r.worker == worker).count()
        })
    }

    /// Metrics as Kong's Prometheus plugin names them (`pw:<filter>:<name>`).
    pub fn metrics(&self) -> BTreeMap<String, Metric> {
        let Ok(shared) = self.env.shared.lock() else {
            return BTreeMap::new();
        };
        shared
            .metrics
            .iter()
            .map(|m| (format!("pw:{}:{}", self.env.filter_name, m.name), m.clone()))
            .collect()
    }

    /// Bytes of linear memory worker `worker`'s instance holds.
    pub fn memory_bytes(&mut self, worker: usize) -> usize {
        self.workers.get_mut(worker).map_or(0, Worker::memory_bytes)
    }

    /// How many instances worker `worker` has started (1 plus one per trap
    /// or rebuild that was followed by use).
    pub fn instances(&self, worker: usize) -> u32 {
        self.workers.get(worker).map_or(0, |w| w.instances)
    }

    /// Throws worker `worker`'s instance away, as a trap in any of its
    /// filters would (Kong shares one instance per worker): its memory is
    /// lost, and the next context starts a fresh instance.
    pub fn reset_instance(&mut self, worker: usize) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.discard_instance();
            let _ = w.ensure_started();
        }
    }

    /// Replaces the chain configurations, as an Admin API change does:
    /// every worker gets a fresh instance.
    pub fn reconfigure(&mut self, chains: &[&str]) {
        let chains: Vec<Vec<u8>> = chains.iter().map(|c| c.as_bytes().to_vec()).collect();
        self.env.chains = chains.clone();
        for w in &mut self.workers {
            w.rebuild(chains.clone());
            let _ = w.ensure_started();
        }
    }
}
