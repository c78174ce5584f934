//! Header maps: the request's and response's headers in HTTP contexts, and
//! an HTTP call's response headers inside `on_http_call_response`. Names are
//! compared case-insensitively and stored lowercase, as nginx presents them.

use wasmtime::{Caller, Linker, Result};

use super::{HostState, Phase, memory, status};

/// Map types of the proxy-wasm ABI.
const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;
const CALL_RESPONSE_HEADERS: u32 = 6;

/// The map `map_type` names, if it exists in the running callback.
fn map(state: &mut HostState, map_type: u32) -> Option<&mut Vec<(String, String)>> {
    match map_type {
        REQUEST_HEADERS if state.phase.is_http() => Some(&mut state.request.request_headers),
        RESPONSE_HEADERS
            if matches!(
                state.phase,
                Phase::ResponseHeaders | Phase::ResponseBody | Phase::Done | Phase::Log
            ) =>
        {
            Some(&mut state.request.response_headers)
        }
        CALL_RESPONSE_HEADERS if state.phase == Phase::HttpCallResponse => {
            Some(&mut state.call_response.headers)
        }
        _ => None,
    }
}

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         ret_ptr: u32,
         ret_size: u32|
         -> Result<i32> {
            let Some(pairs) = map(caller.data_mut(), map_type).map(|m| memory::serialize_map(m))
            else {
                return Ok(status::NOT_FOUND);
            };
            memory::give(&mut caller, &pairs, ret_ptr, ret_size)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, HostState>, map_type: u32, ptr: u32, size: u32| -> Result<i32> {
            let bytes = memory::read(&mut caller, ptr, size)?;
            let Some(pairs) = memory::deserialize_map(&bytes) else {
                return Ok(status::BAD_ARGUMENT);
            };
            match map(caller.data_mut(), map_type) {
                Some(m) => {
                    *m = pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect();
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         key_ptr: u32,
         key_size: u32,
         ret_ptr: u32,
         ret_size: u32|
         -> Result<i32> {
            let key = memory::read_str(&mut caller, key_ptr, key_size)?;
            let value = map(caller.data_mut(), map_type)
                .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key)))
                .map(|(_, v)| v.clone());
            match value {
                Some(v) => {
                    memory::give(&mut caller, v.as_bytes(), ret_ptr, ret_size)?;
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    for (name, replace) in [
        ("proxy_replace_header_map_value", true),
        ("proxy_add_header_map_value", false),
    ] {
        linker.func_wrap(
            "env",
            name,
            move |mut caller: Caller<'_, HostState>,
                  map_type: u32,
                  key_ptr: u32,
                  key_size: u32,
                  value_ptr: u32,
                  value_size: u32|
                  -> Result<i32> {
                let key = memory::read_str(&mut caller, key_ptr, key_size)?.to_ascii_lowercase();
                let value = memory::read_str(&mut caller, value_ptr, value_size)?;
                let Some(m) = map(caller.data_mut(), map_type) else {
                    return Ok(status::NOT_FOUND);
                };
                if replace {
                    m.retain(|(k, _)| *k != key);
                }
                m.push((key, value));
                Ok(status::OK)
            },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, HostState>,
         map_type: u32,
         key_ptr: u32,
         key_size: u32|
         -> Result<i32> {
            let key = memory::read_str(&mut caller, key_ptr, key_size)?;
            let Some(m) = map(caller.data_mut(), map_type) else {
                return Ok(status::NOT_FOUND);
            };
            m.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            Ok(status::OK)
        },
    )?;
    Ok(())
}
