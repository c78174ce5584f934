//! Buffers: the VM and plugin configuration in `on_vm_start` and
//! `on_configure`, request and response bodies in HTTP contexts, and an HTTP
//! call's response body inside `on_http_call_response`.

use wasmtime::{Caller, Linker, Result};

use super::{HostState, Phase, memory, status};

const REQUEST_BODY: u32 = 0;
const RESPONSE_BODY: u32 = 1;
const CALL_RESPONSE_BODY: u32 = 4;
const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;

fn buffer(state: &mut HostState, kind: u32) -> Option<&mut Vec<u8>> {
    let root = state.root_id;
    match kind {
        REQUEST_BODY if state.phase.is_http() => Some(&mut state.request.request_body),
        RESPONSE_BODY if state.phase.is_http() => Some(&mut state.request.response_body),
        CALL_RESPONSE_BODY if state.phase == Phase::HttpCallResponse => {
            Some(&mut state.call_response.body)
        }
        VM_CONFIGURATION if state.phase == Phase::VmStart => {
            state.roots.get_mut(&root).map(|r| &mut r.vm_config)
        }
        PLUGIN_CONFIGURATION if state.phase == Phase::Configure => {
            state.roots.get_mut(&root).map(|r| &mut r.plugin_config)
        }
        _ => None,
    }
}

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut caller: Caller<'_, HostState>,
         kind: u32,
         start: u32,
         max: u32,
         ret_ptr: u32,
         ret_size: u32|
         -> Result<i32> {
            let Some(slice) = buffer(caller.data_mut(), kind).map(|b| {
                let start = (start as usize).min(b.len());
                let end = start.saturating_add(max as usize).min(b.len());
                b[start..end].to_vec()
            }) else {
                return Ok(status::NOT_FOUND);
            };
            memory::give(&mut caller, &slice, ret_ptr, ret_size)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut caller: Caller<'_, HostState>,
         kind: u32,
         start: u32,
         size: u32,
         ptr: u32,
         len: u32|
         -> Result<i32> {
            let bytes = memory::read(&mut caller, ptr, len)?;
            let Some(b) = buffer(caller.data_mut(), kind) else {
                return Ok(status::NOT_FOUND);
            };
            let start = (start as usize).min(b.len());
            let end = start.saturating_add(size as usize).min(b.len());
            b.splice(start..end, bytes);
            Ok(status::OK)
        },
    )?;
    Ok(())
}
