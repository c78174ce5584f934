//! `proxy_http_call`, with ngx_wasm_module's rules: it traps outside
//! `on_http_request_headers`, `on_http_request_body`, `on_tick` and
//! `on_http_call_response`; `:method` and `:path` are required; the call is
//! made for real by [`crate::dispatch`]. Two uses that hurt the real engine
//! are refused here, though it accepts them:
//! - a second call in flight from one root context leaks a connection
//!   slot (the engine frees a root's call only when no other call of that
//!   root is pending; seen in Kong 3.9's engine and the newer one:
//!   `worker_connections are not enough`, then 500s and 502s for
//!   clients), so it traps, whether the first call left in the same
//!   `on_tick` or an earlier one;
//! - a dispatch from a root context's `on_http_call_response` kills the
//!   worker (SIGSEGV), so it crashes the worker here too.

use wasmtime::{Caller, Linker, Result, bail};

use super::{HostState, Phase, WorkerCrash, memory, status};
use crate::dispatch::DispatchRecord;

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut caller: Caller<'_, HostState>,
         upstream_ptr: u32,
         upstream_size: u32,
         headers_ptr: u32,
         headers_size: u32,
         body_ptr: u32,
         body_size: u32,
         _trailers_ptr: u32,
         _trailers_size: u32,
         timeout_ms: u32,
         ret_token: u32|
         -> Result<i32> {
            let phase = caller.data().phase;
            if !phase.may_dispatch() {
                bail!("dispatch_http_call in {}: ngx_wasm_module only allows it in on_http_request_headers, on_http_request_body, on_tick and on_http_call_response", phase.callback());
            }
            let state = caller.data();
            if phase == Phase::HttpCallResponse && state.root_call_response {
                return Err(wasmtime::Error::new(WorkerCrash(
                    "dispatch_http_call from a root context's on_http_call_response".into(),
                )));
            }
            if phase == Phase::Tick && state.dispatcher.root_call_pending(state.root_id) {
                bail!("second call in flight from one root context: leaks connection slots in ngx_wasm_module (send one, and the next after its answer)");
            }
            let upstream = memory::read_str(&mut caller, upstream_ptr, upstream_size)?;
            let raw = memory::read(&mut caller, headers_ptr, headers_size)?;
            let body = memory::read(&mut caller, body_ptr, body_size)?;
            let Some(headers) = memory::deserialize_map(&raw) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let pseudo = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let (Some(method), Some(path)) = (pseudo(":method"), pseudo(":path")) else {
                caller.data().log(4, "dispatch_http_call: :method and :path are required".into());
                return Ok(status::BAD_ARGUMENT);
            };
            if upstream.is_empty() {
                return Ok(status::BAD_ARGUMENT);
            }
            let state = caller.data();
            let token = state.dispatcher.token();
            let record = DispatchRecord {
                worker: state.worker,
                token,
                upstream,
                method,
                path,
                headers,
                body,
                timeout_ms,
                at_ms: state.clock.now_ms(),
            };
            let (context, root) = (state.context_id, state.root_id);
            state.dispatcher.start(record, context, root);
            memory::write_u32(&mut caller, ret_token, token)?;
            Ok(status::OK)
        },
    )?;
    Ok(())
}
