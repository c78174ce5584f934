//! One Kong worker: one Wasm instance shared by the root contexts of every
//! filter chain (Kong's default `none` isolation), the request lifecycle as
//! ngx_wasm_module runs it, ticks, HTTP call responses, and what a trap
//! does: the request gets a 500, its remaining callbacks are skipped, and
//! the next context gets a fresh instance whose root contexts run
//! `on_vm_start` and `on_configure` again.
//!
//! What kills an nginx worker in the real engine (a SIGSEGV in
//! ngx_wasm_module) is a crash here: like a trap it wipes the instance, but
//! the request gets no answer at all (status 0), the worker process's
//! dispatch tokens start again at 0 (nginx forks a new one), and
//! [`TrapRecord::crash`] marks it for tests.

use std::sync::{Arc, Mutex};

use wasmtime::{Engine, Instance, Linker, Module, Store, TypedFunc, WasmParams, WasmResults};

use crate::clock::Clock;
use crate::dispatch::{CallResult, DispatchRecord, Dispatcher};
use crate::host::{
    CallResponse, HostState, LogLine, Phase, RequestState, RootState, WorkerCrash, headers,
    properties,
};
use crate::profile::Profile;
use crate::request::{Outcome, Request};
use crate::shared::Shared;

/// What every worker of a node is built from.
#[derive(Clone)]
pub(crate) struct Env {
    pub engine: Engine,
    pub module: Module,
    pub linker: Arc<Linker<HostState>>,
    pub profile: Profile,
    pub filter_name: String,
    pub clock: Clock,
    pub shared: Arc<Mutex<Shared>>,
    pub logs: Arc<Mutex<Vec<LogLine>>>,
    pub records: Arc<Mutex<Vec<DispatchRecord>>>,
    pub traps: Arc<Mutex<Vec<TrapRecord>>>,
    /// One configuration per chain.
    pub chains: Vec<Vec<u8>>,
    /// Variables that nginx's config defines by `map`: name, value.
    pub maps: Arc<Vec<(String, String)>>,
}

/// A trap the filter hit, or a crash of its worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrapRecord {
    /// The worker.
    pub worker: usize,
    /// The callback that trapped.
    pub callback: &'static str,
    /// The message.
    pub message: String,
    /// True when the real engine's worker would have died (SIGSEGV), not
    /// merely trapped.
    pub crash: bool,
}

/// Records traps and crashes for one worker; cloned into closures that
/// cannot borrow the worker.
#[derive(Clone)]
struct Faults {
    worker: usize,
    traps: Arc<Mutex<Vec<TrapRecord>>>,
    /// The worker process's dispatch token counter: a crash means a new
    /// process, whose counter starts at 0.
    next_token: Arc<Mutex<u32>>,
}

impl Faults {
    fn record(&self, callback: &'static str, e: &wasmtime::Error) -> Trap {
        let crash = e.is::<WorkerCrash>();
        let message = format!("{e:#}");
        if let Ok(mut traps) = self.traps.lock() {
            traps.push(TrapRecord {
                worker: self.worker,
                callback,
                message: message.clone(),
                crash,
            });
        }
        if crash && let Ok(mut next) = self.next_token.lock() {
            *next = 0;
        }
        Trap {
            message,
            crash,
            answered: None,
        }
    }
}

/// `proxy_on_http_call_response(context, token, headers, body, trailers)`.
type CallResponseFn = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// The guest's callbacks, looked up and type-checked once per instance
/// rather than on every call.
struct Exports {
    context_create: Option<TypedFunc<(u32, u32), ()>>,
    vm_start: Option<TypedFunc<(u32, u32), u32>>,
    configure: Option<TypedFunc<(u32, u32), u32>>,
    tick: Option<TypedFunc<u32, ()>>,
    request_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    request_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    response_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    response_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    done: Option<TypedFunc<u32, u32>>,
    log: Option<TypedFunc<u32, ()>>,
    delete: Option<TypedFunc<u32, ()>>,
    call_response: Option<CallResponseFn>,
}

impl Exports {
    fn new(store: &mut Store<HostState>, instance: &Instance) -> Self {
        Exports {
            context_create: instance
                .get_typed_func(&mut *store, "proxy_on_context_create")
                .ok(),
            vm_start: instance
                .get_typed_func(&mut *store, "proxy_on_vm_start")
                .ok(),
            configure: instance
                .get_typed_func(&mut *store, "proxy_on_configure")
                .ok(),
            tick: instance.get_typed_func(&mut *store, "proxy_on_tick").ok(),
            request_headers: instance
                .get_typed_func(&mut *store, "proxy_on_request_headers")
                .ok(),
            request_body: instance
                .get_typed_func(&mut *store, "proxy_on_request_body")
                .ok(),
            response_headers: instance
                .get_typed_func(&mut *store, "proxy_on_response_headers")
                .ok(),
            response_body: instance
                .get_typed_func(&mut *store, "proxy_on_response_body")
                .ok(),
            done: instance.get_typed_func(&mut *store, "proxy_on_done").ok(),
            log: instance.get_typed_func(&mut *store, "proxy_on_log").ok(),
            delete: instance.get_typed_func(&mut *store, "proxy_on_delete").ok(),
            call_response: instance
                .get_typed_func(&mut *store, "proxy_on_http_call_response")
                .ok(),
        }
    }
}

struct Live {
    store: Store<HostState>,
    instance: Instance,
    exports: Exports,
    /// Root context id per chain.
    roots: Vec<u32>,
    /// Whether each chain's `on_configure` returned true.
    configured: Vec<bool>,
}

pub(crate) struct Worker {
    pub id: usize,
    env: Env,
    faults: Faults,
    live: Option<Live>,
    next_id: u32,
    seed: u64,
    /// Instances started so far, for tests.
    pub instances: u32,
}

/// Why a callback did not finish.
pub(crate) struct Trap {
    message: String,
    /// The worker died rather than trapped.
    crash: bool,
    /// The status the client already had: a trap or crash in the log
    /// phase (`on_done`, `on_log`, `on_delete`) comes after nginx sent the
    /// response, and changes nothing the client sees.
    answered: Option<u16>,
}

impl Trap {
    /// This trap, in the log phase of a request answered with `status`.
    fn after_response(self, status: u16) -> Trap {
        Trap {
            answered: Some(status),
            ..self
        }
    }
}

impl From<String> for Trap {
    fn from(message: String) -> Self {
        Trap {
            message,
            crash: false,
            answered: None,
        }
    }
}

impl Worker {
    pub fn new(id: usize, env: Env) -> Self {
        let faults = Faults {
            worker: id,
            traps: env.traps.clone(),
            next_token: Arc::new(Mutex::new(0)),
        };
        Worker {
            id,
            env,
            faults,
            live: None,
            // ngx_wasm_module's context ids are large; filters must not
            // assume 1, 2, 3.
            next_id: 1_000_000u32.wrapping_mul(id as u32 + 1).wrapping_add(7),
            seed: 0x5eed_0000 + id as u64,
            instances: 0,
        }
    }

    fn fresh_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }

    /// The live instance, starting one if there is none.
    fn live(&mut self) -> Result<&mut Live, Trap> {
        if self.live.is_none() {
            let live = self.start()?;
            self.live = Some(live);
        }
        self.live
            .as_mut()
            .ok_or_else(|| Trap::from("no instance".to_owned()))
    }

    fn start(&mut self) -> Result<Live, Trap> {
        self.instances += 1;
        self.seed = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let state = HostState {
            worker: self.id,
            profile: self.env.profile,
            filter_name: self.env.filter_name.clone(),
            clock: self.env.clock.clone(),
            phase: Phase::None,
            context_id: 0,
            root_id: 0,
            roots: Default::default(),
            request: RequestState::default(),
            call_response: CallResponse::default(),
            logs: self.env.logs.clone(),
            shared: self.env.shared.clone(),
            dispatcher: Dispatcher::new(self.env.records.clone(), self.faults.next_token.clone()),
            random: self.seed,
            guest: None,
            root_call_response: false,
            maps: self.env.maps.clone(),
        };
        let mut store = Store::new(&self.env.engine, state);
        let instance = self
            .env
            .linker
            .instantiate(&mut store, &self.env.module)
            .map_err(|e| Trap::from(format!("instantiate: {e:#}")))?;
        let exports = Exports::new(&mut store, &instance);
        store.data_mut().guest = Some(crate::host::memory::Guest::of(&mut store, &instance));
        let mut live = Live {
            store,
            instance,
            exports,
            roots: Vec::new(),
            configured: Vec::new(),
        };
        for export in ["_initialize", "_start"] {
            if let Ok(f) = live
                .instance
                .get_typed_func::<(), ()>(&mut live.store, export)
            {
                f.call(&mut live.store, ())
                    .map_err(|e| self.trap(export, &e))?;
                break;
            }
        }
        for config in self.env.chains.clone() {
            let root = self.fresh_id();
            live.store.data_mut().roots.insert(
                root,
                RootState {
                    plugin_config: config.clone(),
                    ..RootState::default()
                },
            );
            call(
                &mut live,
                "proxy_on_context_create",
                |e| e.context_create.clone(),
                Phase::None,
                root,
                root,
                (root, 0),
            )
            .map_err(|e| self.trap("on_context_create", &e))?;
            call(
                &mut live,
                "proxy_on_vm_start",
                |e| e.vm_start.clone(),
                Phase::VmStart,
                root,
                root,
                (root, 0),
            )
            .map_err(|e| self.trap("on_vm_start", &e))?;
            let size = u32::try_from(config.len()).unwrap_or(u32::MAX);
            let ok = call(
                &mut live,
                "proxy_on_configure",
                |e| e.configure.clone(),
                Phase::Configure,
                root,
                root,
                (root, size),
            )
            .map_err(|e| self.trap("on_configure", &e))?;
            live.roots.push(root);
            live.configured.push(ok != 0);
        }
        Ok(live)
    }

    fn trap(&self, callback: &'static str, e: &wasmtime::Error) -> Trap {
        self.faults.record(callback, e)
    }

    /// Runs one request through its chain.
    ///
    /// # Panics
    /// When the request's timing properties are ones nginx cannot produce
    /// (see `properties::check_timing`): the test is wrong, not the filter.
    pub fn request(&mut self, req: &Request) -> Outcome {
        if let Err(e) = properties::check_timing(&req.properties) {
            panic!("testkit refuses this request: {e}");
        }
        match self.run_request(req) {
            Ok(outcome) => outcome,
            Err(trap) => {
                // The instance is gone; the next context gets a new one.
                // A crashed worker answers nothing: nginx drops the
                // connection. In the log phase the answer has gone out.
                self.live = None;
                Outcome {
                    status: trap.answered.unwrap_or(if trap.crash { 0 } else { 500 }),
                    trap: Some(trap.message),
                    local_response: None,
                    paused: false,
                    crashed: trap.crash,
                }
            }
        }
    }

    fn run_request(&mut self, req: &Request) -> Result<Outcome, Trap> {
        let ctx = self.fresh_id();
        let clock = self.env.clock.clone();
        let faults = self.faults.clone();
        let live = self.live()?;
        let Some(&root) = live.roots.get(req.chain) else {
            return Err(format!("no chain {}", req.chain).into());
        };
        if !live.configured.get(req.chain).copied().unwrap_or(false) {
            // A chain whose filter refused its configuration fails requests.
            return Ok(Outcome {
                status: 500,
                trap: None,
                local_response: None,
                paused: false,
                crashed: false,
            });
        }
        let request_headers = headers::request_map(req);
        let header_count = request_headers.len();
        live.store.data_mut().request = RequestState {
            request_headers,
            request_body: req.body.clone(),
            properties: req.properties.clone(),
            ..RequestState::default()
        };
        let mut paused = false;
        type Step = fn(&Exports) -> Option<TypedFunc<(u32, u32, u32), u32>>;
        let steps = |live: &mut Live, name, phase: Phase, pick: Step, args: (u32, u32, u32)| {
            call(live, name, pick, phase, ctx, root, args)
        };
        let fail = move |callback: &'static str, e: wasmtime::Error| -> Trap {
            faults.record(callback, &e)
        };
        call(
            live,
            "proxy_on_context_create",
            |e| e.context_create.clone(),
            Phase::None,
            ctx,
            root,
            (ctx, root),
        )
        .map_err(|e| fail("on_context_create", e))?;
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        if !req.answered_in_rewrite {
            let action = steps(
                live,
                "proxy_on_request_headers",
                Phase::RequestHeaders,
                |e| e.request_headers.clone(),
                (ctx, n(header_count), u32::from(req.body.is_empty())),
            )
            .map_err(|e| fail("on_http_request_headers", e))?;
            paused |= action == 1;
        }
        if !req.answered_in_rewrite
            && !req.body.is_empty()
            && live.store.data().request.local_response.is_none()
        {
            let action = steps(
                live,
                "proxy_on_request_body",
                Phase::RequestBody,
                |e| e.request_body.clone(),
                (ctx, n(req.body.len()), 1),
            )
            .map_err(|e| fail("on_http_request_body", e))?;
            paused |= action == 1;
        }
        let local = live.store.data().request.local_response.clone();
        let status = match &local {
            Some(l) => u16::try_from(l.status).unwrap_or(500),
            None => req.response.status,
        };
        clock.advance(std::time::Duration::from_millis(req.duration_ms));
        if local.is_none() {
            let mut headers = vec![(":status".to_owned(), status.to_string())];
            headers.extend(req.response.headers.iter().cloned());
            let count = n(headers.len());
            let state = live.store.data_mut();
            state.request.response_headers = headers;
            state.request.response_body = req.response.body.clone();
            steps(
                live,
                "proxy_on_response_headers",
                Phase::ResponseHeaders,
                |e| e.response_headers.clone(),
                (ctx, count, u32::from(req.response.body.is_empty())),
            )
            .map_err(|e| fail("on_http_response_headers", e))?;
            // nginx runs the body filters, and so `on_response_body`, for
            // every response but one of headers only: even an empty 200
            // gets its last, empty chunk (both engines, 2026-12-07).
            if !headers_only(req, status) {
                steps(
                    live,
                    "proxy_on_response_body",
                    Phase::ResponseBody,
                    |e| e.response_body.clone(),
                    (ctx, n(req.response.body.len()), 1),
                )
                .map_err(|e| fail("on_http_response_body", e))?;
            }
        }
        // ngx_wasm_module's log phase: on_done, then on_log.
        call(
            live,
            "proxy_on_done",
            |e| e.done.clone(),
            Phase::Done,
            ctx,
            root,
            ctx,
        )
        .map_err(|e| fail("on_done", e).after_response(status))?;
        call(
            live,
            "proxy_on_log",
            |e| e.log.clone(),
            Phase::Log,
            ctx,
            root,
            ctx,
        )
        .map_err(|e| fail("on_log", e).after_response(status))?;
        call(
            live,
            "proxy_on_delete",
            |e| e.delete.clone(),
            Phase::None,
            ctx,
            root,
            ctx,
        )
        .map_err(|e| fail("on_delete", e).after_response(status))?;
        live.store.data_mut().request = RequestState::default();
        Ok(Outcome {
            status,
            trap: None,
            local_response: local,
            paused,
            crashed: false,
        })
    }

    /// The earliest tick due among this worker's root contexts.
    pub fn next_tick_ns(&self) -> Option<u64> {
        let live = self.live.as_ref()?;
        live.store
            .data()
            .roots
            .values()
            .filter_map(|r| r.next_tick_ns)
            .min()
    }

    /// Fires every tick due at `now_ns`, in root order.
    pub fn fire_ticks(&mut self, now_ns: u64) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let due: Vec<(u32, u32)> = live
            .store
            .data()
            .roots
            .iter()
            .filter(|(_, r)| r.next_tick_ns.is_some_and(|t| t <= now_ns))
            .map(|(id, r)| (*id, r.tick_period_ms))
            .collect();
        for (root, period) in due {
            let Some(live) = self.live.as_mut() else {
                return;
            };
            // Unlike the other callbacks, a missing `on_tick` is checked:
            // the engine's tick handler returns without calling it or
            // setting the next tick, so the root ticks no more.
            let ticks = live.exports.tick.is_some();
            if let Some(r) = live.store.data_mut().roots.get_mut(&root) {
                r.next_tick_ns =
                    ticks.then(|| now_ns.saturating_add(u64::from(period) * 1_000_000));
            }
            if !ticks {
                continue;
            }
            if let Err(e) = call(
                live,
                "proxy_on_tick",
                |e| e.tick.clone(),
                Phase::Tick,
                root,
                root,
                root,
            ) {
                self.trap("on_tick", &e);
                self.live = None;
                return;
            }
        }
    }

    /// Delivers every finished HTTP call to its context.
    pub fn deliver_calls(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let done = live.store.data().dispatcher.finish_all();
        for (token, context, root, result) in done {
            let Some(live) = self.live.as_mut() else {
                return;
            };
            // A failed call reports zero headers, though `:dispatch_status`
            // can still be read, as ngx_wasm_module does.
            let (response, nheaders) = match result {
                CallResult::Response {
                    status,
                    headers,
                    body,
                } => {
                    let mut all = vec![
                        (":status".to_owned(), status.to_string()),
                        (":dispatch_status".to_owned(), "ok".to_owned()),
                    ];
                    all.extend(headers);
                    let n = u32::try_from(all.len()).unwrap_or(u32::MAX);
                    (CallResponse { headers: all, body }, n)
                }
                CallResult::Failed(reason) => {
                    // Each failure is logged by the engine, with or
                    // without a callback.
                    live.store
                        .data()
                        .log(4, format!("[wasm] dispatch failed: tcp socket - {reason}"));
                    if !self.env.profile.calls_back_on_dispatch_failure() {
                        continue;
                    }
                    let headers = vec![(":dispatch_status".to_owned(), reason.to_owned())];
                    (
                        CallResponse {
                            headers,
                            body: Vec::new(),
                        },
                        0,
                    )
                }
            };
            let body_size = u32::try_from(response.body.len()).unwrap_or(u32::MAX);
            let state = live.store.data_mut();
            state.call_response = response;
            state.root_call_response = context == root;
            let result = call(
                live,
                "proxy_on_http_call_response",
                |e| e.call_response.clone(),
                Phase::HttpCallResponse,
                context,
                root,
                (context, token, nheaders, body_size, 0),
            );
            if let Some(live) = self.live.as_mut() {
                let state = live.store.data_mut();
                state.call_response = CallResponse::default();
                state.root_call_response = false;
            }
            if let Err(e) = result {
                self.trap("on_http_call_response", &e);
                self.live = None;
                return;
            }
        }
    }

    /// Starts the instance if it is not running (Kong starts workers, and
    /// their ticks, before any request arrives).
    pub fn ensure_started(&mut self) -> Result<(), Trap> {
        self.live().map(|_| ())
    }

    /// Bytes of linear memory the instance holds.
    pub fn memory_bytes(&mut self) -> usize {
        let Some(live) = self.live.as_mut() else {
            return 0;
        };
        match live.instance.get_memory(&mut live.store, "memory") {
            Some(m) => m.data_size(&live.store),
            None => 0,
        }
    }

    /// Throws the instance away, as a trap does: whatever it held is lost,
    /// and the next context gets a fresh one.
    pub fn discard_instance(&mut self) {
        self.live = None;
    }

    /// Replaces the chains; the worker-wide instance is rebuilt, as Kong
    /// does when a plan is freed.
    pub fn rebuild(&mut self, chains: Vec<Vec<u8>>) {
        self.env.chains = chains;
        self.live = None;
    }
}

/// A response nginx sends without a body, so without body filters: a 204,
/// a 304, or the answer to a HEAD (as the engines did).
fn headers_only(req: &Request, status: u16) -> bool {
    matches!(status, 204 | 304)
        || req
            .headers
            .iter()
            .any(|(name, value)| name == ":method" && value.eq_ignore_ascii_case("HEAD"))
}

/// Calls the export `name` with the host state set for `phase`. A module
/// without it crashes the worker: ngx_wasm_module looks each callback up
/// when it loads a filter and calls it without checking that it was
/// found, a NULL dereference (SIGSEGV) when its step comes.
fn call<P: WasmParams, R: WasmResults>(
    live: &mut Live,
    name: &'static str,
    pick: impl FnOnce(&Exports) -> Option<TypedFunc<P, R>>,
    phase: Phase,
    context: u32,
    root: u32,
    args: P,
) -> wasmtime::Result<R> {
    let Some(f) = pick(&live.exports) else {
        return Err(wasmtime::Error::new(WorkerCrash(format!(
            "the filter does not export {name}, which ngx_wasm_module calls unchecked"
        ))));
    };
    let state = live.store.data_mut();
    let saved = (state.phase, state.context_id, state.root_id);
    state.phase = phase;
    state.context_id = context;
    state.root_id = root;
    let result = f.call(&mut live.store, args);
    let state = live.store.data_mut();
    (state.phase, state.context_id, state.root_id) = saved;
    result
}
