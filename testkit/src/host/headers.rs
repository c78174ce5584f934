//! Header maps: the request's and response's headers in HTTP contexts, and
//! an HTTP call's response headers inside `on_http_call_response`. Names are
//! compared case-insensitively and kept in the case they arrived in, as
//! nginx keeps them (`ngx_table_elt_t.key`; only `lowcase_key` is lowered).

use wasmtime::{Caller, Linker, Result};

use super::{HostState, Phase, memory, status};
use crate::request::{Protocol, Request};

/// The request header map as ngx_wasm_module builds it
/// (`ngx_proxy_wasm_maps_get_all`): the pseudo-headers `:path`, `:method`,
/// `:scheme` and `:authority` first, then `r->headers_in` in arrival order.
///
/// - HTTP/1 names keep the client's case; HTTP/2 names are lowercase (the
///   protocol sends them so), which the engine showed.
/// - `:authority` is the server's `server_name:port`
///   (`ngx_proxy_wasm_maps_get_authority`), never the Host header; a
///   client's HTTP/2 `:authority` becomes a `host` header, as nginx's
///   HTTP/2 module does when there is none.
pub(crate) fn request_map(req: &Request) -> Vec<(String, String)> {
    let pseudo = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut map = Vec::with_capacity(req.headers.len() + 2);
    for name in [":path", ":method", ":scheme"] {
        if let Some(v) = pseudo(name).filter(|v| !v.is_empty()) {
            map.push((name.to_owned(), v));
        }
    }
    if !req.listener.is_empty() {
        map.push((":authority".to_owned(), req.listener.clone()));
    }
    let regular = req.headers.iter().filter(|(k, _)| !k.starts_with(':'));
    match req.protocol {
        Protocol::Http11 => map.extend(regular.cloned()),
        Protocol::Http2 => {
            let has_host = req
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("host"));
            if let (false, Some(authority)) = (has_host, pseudo(":authority")) {
                map.push(("host".to_owned(), authority));
            }
            map.extend(regular.map(|(k, v)| (k.to_ascii_lowercase(), v.clone())));
        }
    }
    map
}

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
                    *m = pairs;
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
                let key = memory::read_str(&mut caller, key_ptr, key_size)?;
                let value = memory::read_str(&mut caller, value_ptr, value_size)?;
                let Some(m) = map(caller.data_mut(), map_type) else {
                    return Ok(status::NOT_FOUND);
                };
                // nginx (ngx_http_wasm_set_header_helper): a replace
                // rewrites the first match in place, with the filter's
                // name, and clears the others; an add appends.
                let first = m.iter().position(|(k, _)| k.eq_ignore_ascii_case(&key));
                match first {
                    Some(i) if replace => {
                        let mut n = 0;
                        m.retain(|(k, _)| {
                            n += 1;
                            n - 1 == i || !k.eq_ignore_ascii_case(&key)
                        });
                        if let Some(slot) = m.get_mut(i) {
                            *slot = (key, value);
                        }
                    }
                    _ => m.push((key, value)),
                }
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
