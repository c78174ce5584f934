//! Flow control: continuing a paused request and sending a local response.

use wasmtime::{Caller, Linker, Result, bail};

use super::{HostState, LocalResponse, memory, status};

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |caller: Caller<'_, HostState>, stream: u32| -> Result<i32> {
            // ngx_wasm_module resumes requests; continue_response is not
            // implemented there.
            if stream != 0 {
                bail!("continue_stream({stream}): only the request stream can be resumed in ngx_wasm_module");
            }
            let _ = caller;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut caller: Caller<'_, HostState>, context: u32| -> Result<i32> {
            // The SDK names the context a call response belongs to.
            caller.data_mut().context_id = context;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |_caller: Caller<'_, HostState>, _stream: u32| -> Result<i32> { Ok(status::OK) },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut caller: Caller<'_, HostState>,
         status_code: u32,
         _details_ptr: u32,
         _details_size: u32,
         body_ptr: u32,
         body_size: u32,
         headers_ptr: u32,
         headers_size: u32,
         _grpc_status: i32|
         -> Result<i32> {
            if !caller.data().phase.is_http() {
                bail!(
                    "send_local_response in {}: no request",
                    caller.data().phase.callback()
                );
            }
            let body = memory::read(&mut caller, body_ptr, body_size)?;
            let raw = memory::read(&mut caller, headers_ptr, headers_size)?;
            let headers = memory::deserialize_map(&raw).unwrap_or_default();
            caller.data_mut().request.local_response = Some(LocalResponse {
                status: status_code,
                headers,
                body,
            });
            Ok(status::OK)
        },
    )?;
    Ok(())
}
