//! The proxy-wasm contexts that Kong drives: the only code that calls the
//! host. Root contexts ([`root`]) parse the config, tick and ship batches;
//! HTTP contexts ([`http`]) read the request in the log phase, and the
//! [`stage`] assembles the records a few dozen at a time; every context of
//! the Wasm instance shares one [`worker`] state.

mod abi;
mod http;
mod metrics;
mod root;
mod stage;
mod worker;

use proxy_wasm::traits::RootContext;
use proxy_wasm::types::LogLevel;

/// The allocator: talc, in place of wasi-libc's dlmalloc, behind a cache
/// of small freed blocks. Every property Kong answers is a buffer the
/// guest allocates for it (eight or more per request, freed in the same
/// log phase): dlmalloc's bins made each allocation and free 60 to 90 Wasm
/// instructions, and talc's are not much fewer.
#[global_allocator]
static ALLOCATOR: crate::allocator::Cached<talc::wasm::WasmDynamicTalc> =
    crate::allocator::Cached::new(talc::wasm::new_wasm_dynamic_allocator());

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|id| -> Box<dyn RootContext> { Box::new(root::Root::new(id)) });
}}

/// Logs through the host; a failed log call is not worth a trap.
fn log(level: LogLevel, message: &str) {
    let _ = proxy_wasm::hostcalls::log(level, &format!("[kong_looker] {message}"));
}

/// The host's wall clock, Unix ms; 0 if the host cannot tell.
fn now_ms() -> i64 {
    abi::now_ms()
}
