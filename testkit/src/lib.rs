//! kong-looker-testkit: a proxy-wasm host on Wasmtime that behaves like
//! Kong's ngx_wasm_module, so that tests and benches run the real
//! `kong_looker.wasm` the way Kong 3.8 and 3.9 would.
//!
//! # What it reproduces
//! - The proxy-wasm ABI 0.2.1 host functions Kong supports: logging, time,
//!   tick period, header maps, buffers, properties, continue and local
//!   responses, `dispatch_http_call` (real HTTP/1.1 with `Connection:
//!   close`), shared data with ngx_wasm_module's CAS rules, shared queues,
//!   metrics, and the WASI calls it provides. Functions it does not
//!   implement trap, and so does any unknown import.
//! - Dispatch traps outside `on_http_request_headers`,
//!   `on_http_request_body`, `on_tick` and `on_http_call_response`, and so
//!   does a second dispatch in one `on_tick` (it leaks connection slots in
//!   the engine). Tokens start at 0. Only a root context may set a tick
//!   period, and a second non-zero period traps.
//! - Request header names keep the client's case on HTTP/1 and are
//!   lowercase on HTTP/2; `:authority` is the listener's `server_name:port`.
//! - One instance per worker shared by the root contexts of every chain;
//!   the log phase calls `on_done` then `on_log`; a trap gives the request a
//!   500 (in the log phase, after the response, the client keeps what it
//!   had), skips its remaining callbacks, and the next context gets a fresh
//!   instance whose roots rerun `on_vm_start` and `on_configure`.
//! - Callbacks as the engine finds them: a filter without an allocator
//!   (`malloc`, preferred, or `proxy_on_memory_allocate`) or without
//!   `on_context_create`, `on_vm_start` or `on_configure` is refused at
//!   load; any other callback missing crashes the worker when a request
//!   reaches its step (the engine calls it unchecked), except `on_tick`,
//!   whose absence stops the root's ticks. Every response
//!   but one of headers only (204, 304, HEAD) reaches `on_response_body`,
//!   an empty one with its last, empty chunk.
//! - A chain whose `on_configure` returned false fails its requests with a
//!   500, as ngx_wasm_module does after "failed initializing proxy_wasm
//!   filter"; a filter that refuses bad configuration must stay inert
//!   instead, to keep traffic flowing.
//! - `kong.*`, `ngx.*` and request attributes read outside a request give
//!   an error status; `plugin_name` read there, or a dispatch from a root's
//!   `on_http_call_response`, crashes the worker as SIGSEGV does in the
//!   engine ([`Kong::crashes`], [`Outcome::crashed`]).
//! - Timing properties are nginx's: milliseconds, and the upstream time may
//!   exceed the request time by 1 ms; a test giving finer or impossible
//!   times is refused.
//! - Profiles: on `kong-3.8` a failed dispatch never calls back and route
//!   and service names are missing; on `kong-3.9` it calls back with zero
//!   sizes, no headers besides `:dispatch_status` (`timeout`, `broken
//!   connection`, `resolver failure`, `reader failure`) and no `:status`.
//!
//! # What it does not
//! It is not a gateway: no routing, proxying, plugins or Lua. The test gives
//! each request's properties and the upstream's response. Time is a clock
//! the test moves; HTTP calls are real but their responses are delivered
//! when the test turns the clock, all at once and in token order, not as
//! nginx's event loop would interleave them. A request that pauses is not
//! resumed by a later call response. Dispatch timeouts are real time.
//! Memory limits, fuel and Wasmtime flags are Wasmtime's defaults, not
//! Kong's.
//!
//! # Layout
//! - [`kong`]: [`Kong`], [`KongBuilder`] and [`Filter`]: the API.
//! - `worker`: one worker's instance, request lifecycle, ticks and traps.
//! - `host/`: the host functions, one module per ABI area, over `HostState`.
//! - `dispatch`: real HTTP for `dispatch_http_call`.
//! - [`shared`]: what workers share: shared data, queues, metrics.
//! - [`clock`]: the test's clock. [`profile`]: Kong 3.8 and 3.9.
//! - [`request`]: a request and its outcome.
//! - [`compile`]: builds small filter crates for `wasm32-wasip1` on demand.
//! - [`sink`]: a real HTTP server that records what a filter sends, and
//!   answers as the test says.
//! - [`plugin_server`]: Kong's side of the external-plugin socket
//!   (`ProtoBuf:1`), for driving `kong-looker-plugin` as Kong would.

pub mod clock;
pub mod compile;
mod dispatch;
mod host;
pub mod kong;
pub mod plugin_server;
pub mod profile;
pub mod request;
pub mod shared;
pub mod sink;
mod worker;

pub use clock::Clock;
pub use dispatch::{CallResult, DispatchRecord};
pub use host::{LocalResponse, LogLine, Phase};
pub use kong::{Filter, Kong, KongBuilder};
pub use profile::Profile;
pub use request::{KONG_LISTENER, Outcome, Protocol, Request, Response, nginx_seconds};
pub use shared::{Metric, MetricKind};
pub use sink::{Answer, Received, Sink};
pub use worker::TrapRecord;
