//! The proxy-wasm host functions, one module per ABI area, over one
//! [`HostState`] kept in each worker's `Store`. Nothing lives in globals:
//! what workers share (shared data, queues, metrics, the clock) is behind
//! handles in the state.
//!
//! Functions that ngx_wasm_module does not implement trap, as they do
//! there (`nyi.rs`), and so does any import this host does not know.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmtime::{Linker, Result};

use crate::clock::Clock;
use crate::dispatch::Dispatcher;
use crate::profile::Profile;
use crate::shared::Shared;

mod buffers;
pub(crate) mod headers;
mod http_call;
mod log;
pub(crate) mod memory;
mod metrics;
mod nyi;
pub(crate) mod properties;
mod shared_data;
mod stream;
mod time;
mod wasi;

/// Which guest callback is running, which decides what a host function may
/// do: dispatch only in some, tick period only in root callbacks, `kong.*`
/// only in HTTP ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No callback is running (module start, memory allocation).
    None,
    /// `proxy_on_vm_start`.
    VmStart,
    /// `proxy_on_configure`.
    Configure,
    /// `proxy_on_tick`.
    Tick,
    /// `proxy_on_http_call_response`.
    HttpCallResponse,
    /// `proxy_on_request_headers`.
    RequestHeaders,
    /// `proxy_on_request_body`.
    RequestBody,
    /// `proxy_on_response_headers`.
    ResponseHeaders,
    /// `proxy_on_response_body`.
    ResponseBody,
    /// `proxy_on_done`.
    Done,
    /// `proxy_on_log`.
    Log,
}

impl Phase {
    /// Root-context callbacks.
    pub fn is_root(self) -> bool {
        matches!(self, Phase::VmStart | Phase::Configure | Phase::Tick)
            || self == Phase::HttpCallResponse
    }

    /// HTTP-context callbacks, where request data and `kong.*` exist.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Phase::RequestHeaders
                | Phase::RequestBody
                | Phase::ResponseHeaders
                | Phase::ResponseBody
                | Phase::Done
                | Phase::Log
        )
    }

    /// Where ngx_wasm_module allows `dispatch_http_call`.
    pub fn may_dispatch(self) -> bool {
        matches!(
            self,
            Phase::RequestHeaders | Phase::RequestBody | Phase::Tick | Phase::HttpCallResponse
        )
    }

    /// The callback's name, for trap messages.
    pub fn callback(self) -> &'static str {
        match self {
            Phase::None => "(no callback)",
            Phase::VmStart => "on_vm_start",
            Phase::Configure => "on_configure",
            Phase::Tick => "on_tick",
            Phase::HttpCallResponse => "on_http_call_response",
            Phase::RequestHeaders => "on_http_request_headers",
            Phase::RequestBody => "on_http_request_body",
            Phase::ResponseHeaders => "on_http_response_headers",
            Phase::ResponseBody => "on_http_response_body",
            Phase::Done => "on_done",
            Phase::Log => "on_log",
        }
    }
}

/// A host call that kills an nginx worker in ngx_wasm_module (SIGSEGV):
/// a host function returns this, and the worker treats it as the worker
/// process dying, not as a trap: the instance, its calls in flight and the
/// worker's dispatch token counter are gone, and the crash is counted
/// ([`crate::Kong::crashes`]).
#[derive(Debug)]
pub(crate) struct WorkerCrash(pub String);

impl std::fmt::Display for WorkerCrash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "worker crashed (SIGSEGV in ngx_wasm_module): {}", self.0)
    }
}

impl std::error::Error for WorkerCrash {}

/// A line the filter logged (through `proxy_log` or WASI stdout/stderr).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// The worker.
    pub worker: usize,
    /// proxy-wasm level: 0 trace .. 5 critical; stdout is 2, stderr 4.
    pub level: u32,
    /// The message.
    pub message: String,
}

/// The request an HTTP context is working on.
#[derive(Clone, Debug, Default)]
pub(crate) struct RequestState {
    pub request_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Vec<u8>,
    pub properties: BTreeMap<String, Vec<u8>>,
    /// Set by `proxy_send_local_response`.
    pub local_response: Option<LocalResponse>,
}

/// A response the filter produced itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    /// Status code.
    pub status: u32,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// An HTTP call's response while `on_http_call_response` runs.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallResponse {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Per-root-context host state.
#[derive(Clone, Debug, Default)]
pub(crate) struct RootState {
    pub vm_config: Vec<u8>,
    pub plugin_config: Vec<u8>,
    pub tick_period_ms: u32,
    pub next_tick_ns: Option<u64>,
}

/// Everything the host functions of one worker see.
pub struct HostState {
    pub(crate) worker: usize,
    pub(crate) profile: Profile,
    pub(crate) filter_name: String,
    pub(crate) clock: Clock,
    pub(crate) phase: Phase,
    /// The context whose callback is running.
    pub(crate) context_id: u32,
    /// The root context of the running callback (itself, for roots).
    pub(crate) root_id: u32,
    pub(crate) roots: BTreeMap<u32, RootState>,
    pub(crate) request: RequestState,
    pub(crate) call_response: CallResponse,
    pub(crate) logs: Arc<Mutex<Vec<LogLine>>>,
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) dispatcher: Dispatcher,
    /// Deterministic bytes for WASI `random_get`.
    pub(crate) random: u64,
    /// The guest's memory and allocator, looked up once per instance so
    /// that a host call does not pay a by-name export lookup each time.
    pub(crate) guest: Option<memory::Guest>,
    /// True while a root context's `on_http_call_response` runs (a call the
    /// root made, from `on_tick`), as opposed to a request's.
    pub(crate) root_call_response: bool,
    /// Variables nginx's config defines by `map` ([`crate::KongBuilder::nginx_map`]).
    pub(crate) maps: Arc<Vec<(String, String)>>,
}

impl HostState {
    /// Whether the running callback belongs to a request, as
    /// ngx_wasm_module sees it: an HTTP context's callbacks, or the
    /// response to a call an HTTP context made. Root callbacks run on a
    /// fake request or none, where request-scoped properties fail.
    pub(crate) fn in_request(&self) -> bool {
        self.phase.is_http() || (self.phase == Phase::HttpCallResponse && !self.root_call_response)
    }

    pub(crate) fn log(&self, level: u32, message: String) {
        if let Ok(mut logs) = self.logs.lock() {
            logs.push(LogLine {
                worker: self.worker,
                level,
                message,
            });
        }
    }
}

/// Status codes of the proxy-wasm ABI.
pub(crate) mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const CAS_MISMATCH: i32 = 8;
    pub const INTERNAL_FAILURE: i32 = 10;
}

/// Adds every host function to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    log::add(linker)?;
    time::add(linker)?;
    headers::add(linker)?;
    buffers::add(linker)?;
    properties::add(linker)?;
    http_call::add(linker)?;
    shared_data::add(linker)?;
    metrics::add(linker)?;
    stream::add(linker)?;
    nyi::add(linker)?;
    wasi::add(linker)?;
    Ok(())
}
