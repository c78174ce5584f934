//! Properties. A path arrives as NUL-separated segments and is looked up as
//! the dotted name (`ngx.request_time`). The test feeds each request's
//! properties; the host adds what Kong always has. Following Kong's engine
//! (ngx_wasm_module 9136e463, Kong 3.9's pin, and what it did when run):
//! - outside a request (root contexts: `on_vm_start`, `on_configure`,
//!   `on_tick`, a root's `on_http_call_response`), `kong.*`, `ngx.*` and the
//!   Envoy-style request attributes give an error status (InternalFailure,
//!   which the Rust SDK's `Context::get_property` unwraps into a panic) and
//!   log `[wasm] cannot get ... properties outside of a request`;
//! - reading `plugin_name` there kills the worker (SIGSEGV), a crash here;
//! - `kong.route_name` and `kong.service_name` exist from 3.9;
//! - nginx's times are milliseconds, so a test's timing property finer
//!   than that is refused ([`check_timing`]).

use std::collections::BTreeMap;

use wasmtime::{Caller, Linker, Result};

use super::{HostState, WorkerCrash, memory, status};

/// Envoy-style attributes that need a request; in ngx_wasm_module they map
/// to nginx variables, which fail outside one.
const REQUEST_SCOPED: [&str; 7] = [
    "ngx.",
    "request.",
    "response.",
    "upstream.",
    "source.",
    "destination.",
    "connection.",
];

/// What a property read gives the filter.
enum Read {
    Value(Vec<u8>),
    NotFound,
    /// `NGX_ERROR`: the call returns InternalFailure.
    Failed,
}

fn lookup(state: &HostState, name: &str) -> Result<Read> {
    let in_request = state.in_request();
    match name {
        // Its getter dereferences the request, which a root context does
        // not have: the worker dies (seen with Kong 3.9's engine).
        "plugin_name" if !in_request => {
            return Err(wasmtime::Error::new(WorkerCrash(format!(
                "get_property(plugin_name) in {} of a root context",
                state.phase.callback()
            ))));
        }
        "plugin_name" => return Ok(Read::Value(state.filter_name.as_bytes().to_vec())),
        "plugin_root_id" => return Ok(Read::Value(state.root_id.to_string().into_bytes())),
        _ => {}
    }
    if !in_request {
        // ngx_proxy_wasm_properties_get_host / _get_ngx: NGX_ERROR, logged.
        let kind = if name.starts_with("kong.") {
            "host"
        } else if REQUEST_SCOPED.iter().any(|p| name.starts_with(p)) {
            "ngx"
        } else {
            return Ok(Read::NotFound);
        };
        state.log(
            4,
            format!("[wasm] cannot get {kind} properties outside of a request"),
        );
        return Ok(Read::Failed);
    }
    if matches!(name, "kong.route_name" | "kong.service_name")
        && !state.profile.has_route_and_service_names()
    {
        return Ok(Read::NotFound);
    }
    if name == "kong.version" {
        return Ok(Read::Value(
            state.profile.kong_version().as_bytes().to_vec(),
        ));
    }
    if let Some(var) = name.strip_prefix("ngx.")
        && let Some((_, value)) = state.maps.iter().find(|(n, _)| n == var)
    {
        return Ok(Read::Value(expand(state, value)));
    }
    Ok(match state.request.properties.get(name) {
        Some(v) => Read::Value(v.clone()),
        None => Read::NotFound,
    })
}

/// A `map` variable's value, as nginx works it out when it is read: each
/// `$name` becomes that variable's value, empty where it has none. `$status`
/// is what `response.code` reads, `$msec` the clock; the request's own
/// variables come from the header map the filter would see (its
/// pseudo-headers and headers, as a filter before may have changed them).
fn expand(state: &HostState, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() * 2);
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let after = &rest[at + 1..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let var = &after[..len];
        match var {
            "msec" => {
                let ms = state.clock.now_ms();
                out.extend_from_slice(format!("{}.{:03}", ms / 1000, ms % 1000).as_bytes());
            }
            _ if let Some(v) = request_variable(&state.request.request_headers, var) => {
                out.extend_from_slice(v.as_bytes());
            }
            _ => {
                let property = match var {
                    "status" => "response.code".to_owned(),
                    _ => format!("ngx.{var}"),
                };
                if let Some(v) = state.request.properties.get(&property) {
                    out.extend_from_slice(v);
                }
            }
        }
        rest = &after[len..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// The request's variables as nginx works them out: `$request_method`,
/// `$scheme`, `$uri`, `$args` and `$is_args` from the pseudo-headers
/// (ngx_wasm_module's `:path` is `r->uri`, then `?` and `r->args` where
/// there are any), and `$http_NAME` from the headers whose names match
/// with `-` as `_`, regardless of case, repeated ones joined by `, ` (nginx
/// 1.23 and later). `None` for any other variable.
fn request_variable(headers: &[(String, String)], var: &str) -> Option<String> {
    let pseudo = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let path = pseudo(":path");
    let (uri, args) = path.split_once('?').unwrap_or((&path, ""));
    Some(match var {
        "request_method" => pseudo(":method"),
        "scheme" => pseudo(":scheme"),
        "uri" => uri.to_owned(),
        "args" => args.to_owned(),
        "is_args" => if args.is_empty() { "" } else { "?" }.to_owned(),
        _ => {
            let name = var.strip_prefix("http_")?;
            let values: Vec<&str> = headers
                .iter()
                .filter(|(k, _)| {
                    !k.starts_with(':')
                        && k.len() == name.len()
                        && k.bytes().zip(name.bytes()).all(|(a, b)| {
                            let a = if a == b'-' {
                                b'_'
                            } else {
                                a.to_ascii_lowercase()
                            };
                            a == b
                        })
                })
                .map(|(_, v)| v.as_str())
                .collect();
            values.join(", ")
        }
    })
}

/// nginx's timing variables: seconds with exactly three decimals
/// (`%T.%03M`), lists for several upstream tries.
const TIMING: [&str; 6] = [
    "ngx.request_time",
    "request.duration",
    "ngx.upstream_response_time",
    "ngx.upstream_connect_time",
    "ngx.upstream_header_time",
    "ngx.session_time",
];

/// Milliseconds in each numeric item of a timing value (`"0.010, 0.020 :
/// 0.005"`); `Err` for a number nginx could not print. Items that are not
/// numbers (`-`, or garbage a robustness test feeds) are left alone.
fn timing_items(value: &str) -> std::result::Result<Vec<u64>, String> {
    let mut ms = Vec::new();
    for item in value.split([',', ':']).map(str::trim) {
        let numeric = item.bytes().any(|b| b.is_ascii_digit())
            && item.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if !numeric {
            continue;
        }
        let parsed = item.split_once('.').and_then(|(s, frac)| {
            let whole = (!s.is_empty()).then(|| s.parse::<u64>().ok()).flatten()?;
            let frac = (frac.len() == 3)
                .then(|| frac.parse::<u64>().ok())
                .flatten()?;
            whole.checked_mul(1000)?.checked_add(frac)
        });
        match parsed {
            Some(v) => ms.push(v),
            None => {
                return Err(format!(
                    "{item:?} is not how nginx prints a time: seconds with exactly three decimals (its resolution is 1 ms)"
                ));
            }
        }
    }
    Ok(ms)
}

/// Refuses a request whose timing properties nginx could not produce:
/// finer than a millisecond, or an upstream time (summed over tries) more
/// than 1 ms above the request time. 1 ms above is allowed: nginx takes
/// the two from clock reads at different moments, and the engine showed
/// `$upstream_response_time` exceeding `$request_time` by 1 ms.
pub(crate) fn check_timing(props: &BTreeMap<String, Vec<u8>>) -> std::result::Result<(), String> {
    let read = |name: &str| -> std::result::Result<Option<Vec<u64>>, String> {
        match props.get(name) {
            Some(v) => timing_items(&String::from_utf8_lossy(v))
                .map(Some)
                .map_err(|e| format!("{name}: {e}")),
            None => Ok(None),
        }
    };
    for name in TIMING {
        read(name)?;
    }
    let total = read("ngx.request_time")?.and_then(|v| v.first().copied());
    let upstream: Option<u64> = read("ngx.upstream_response_time")?.map(|v| v.iter().sum());
    if let (Some(total), Some(upstream)) = (total, upstream)
        && upstream > total.saturating_add(1)
    {
        return Err(format!(
            "ngx.upstream_response_time ({upstream} ms) exceeds ngx.request_time ({total} ms) by more than the 1 ms nginx can show"
        ));
    }
    Ok(())
}

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut caller: Caller<'_, HostState>,
         path_ptr: u32,
         path_size: u32,
         ret_ptr: u32,
         ret_size: u32|
         -> Result<i32> {
            let path = memory::read(&mut caller, path_ptr, path_size)?;
            let name = String::from_utf8_lossy(&path)
                .trim_end_matches('\0')
                .replace('\0', ".");
            match lookup(caller.data(), &name)? {
                Read::Value(value) => {
                    memory::give(&mut caller, &value, ret_ptr, ret_size)?;
                    Ok(status::OK)
                }
                Read::NotFound => Ok(status::NOT_FOUND),
                Read::Failed => Ok(status::INTERNAL_FAILURE),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut caller: Caller<'_, HostState>,
         path_ptr: u32,
         path_size: u32,
         value_ptr: u32,
         value_size: u32|
         -> Result<i32> {
            let path = memory::read(&mut caller, path_ptr, path_size)?;
            let name = String::from_utf8_lossy(&path)
                .trim_end_matches('\0')
                .replace('\0', ".");
            let value = memory::read(&mut caller, value_ptr, value_size)?;
            let state = caller.data_mut();
            // Kong lets filters write kong.ctx.shared.* (and a few response
            // setters) during a request.
            if state.phase.is_http() && name.starts_with("kong.") {
                state.request.properties.insert(name, value);
                Ok(status::OK)
            } else {
                Ok(status::NOT_FOUND)
            }
        },
    )?;
    Ok(())
}
