//! Properties. A path arrives as NUL-separated segments and is looked up as
//! the dotted name (`ngx.request_time`). The test feeds each request's
//! properties; the host adds what Kong always has. Following Kong:
//! `kong.*` exists only in HTTP contexts; Envoy-style request attributes
//! read from a root context crash Kong 3.8 and 3.9, which this host turns
//! into a trap; `kong.route_name` and `kong.service_name` exist from 3.9.

use wasmtime::{Caller, Linker, Result, bail};

use super::{HostState, memory, status};

/// Envoy-style attributes that need a request.
const REQUEST_SCOPED: [&str; 6] = [
    "request.",
    "response.",
    "upstream.",
    "source.",
    "destination.",
    "connection.",
];

fn lookup(state: &HostState, name: &str) -> Result<Option<Vec<u8>>> {
    match name {
        "plugin_name" => return Ok(Some(state.filter_name.as_bytes().to_vec())),
        "plugin_root_id" => return Ok(Some(state.root_id.to_string().into_bytes())),
        _ => {}
    }
    if !state.phase.is_http() {
        if REQUEST_SCOPED.iter().any(|p| name.starts_with(p)) {
            bail!(
                "get_property({name}) in {}: Kong 3.8 and 3.9 crash reading request attributes outside a request",
                state.phase.callback()
            );
        }
        return Ok(None);
    }
    if matches!(name, "kong.route_name" | "kong.service_name")
        && !state.profile.has_route_and_service_names()
    {
        return Ok(None);
    }
    if name == "kong.version" {
        return Ok(Some(state.profile.kong_version().as_bytes().to_vec()));
    }
    Ok(state.request.properties.get(name).cloned())
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
                Some(value) => {
                    memory::give(&mut caller, &value, ret_ptr, ret_size)?;
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
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
