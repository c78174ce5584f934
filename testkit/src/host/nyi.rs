//! Functions ngx_wasm_module does not implement: calling one traps, as it
//! does in Kong (docs/PROXY_WASM.md of ngx_wasm_module).

use wasmtime::{Caller, Linker, Result, bail};

use super::HostState;

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |_c: Caller<'_, HostState>, _r: u32| -> Result<i32> {
            bail!("proxy_get_log_level is not implemented by ngx_wasm_module")
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |_c: Caller<'_, HostState>, _a: u32, _b: u32, _c2: u32, _d: u32, _e: u32| -> Result<i32> {
            bail!("proxy_resolve_shared_queue is not implemented by ngx_wasm_module")
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_done",
        |_c: Caller<'_, HostState>| -> Result<i32> {
            bail!("proxy_done is not implemented by ngx_wasm_module")
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |_c: Caller<'_, HostState>, _a: u32, _b: u32, _c2: u32| -> Result<i32> {
            bail!("proxy_get_status is not implemented by ngx_wasm_module")
        },
    )?;
    // gRPC calls and anything else unknown are defined as traps when the
    // module is linked (see `worker.rs`).
    Ok(())
}
