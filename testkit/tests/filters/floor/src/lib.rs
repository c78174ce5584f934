//! The floor under kong_looker's cost: a filter that makes the host calls
//! kong_looker makes for a request on a route and caller it has met
//! before, with the same arguments, and does nothing with the answers.
//! The engine bench (`bench/engine.py`) counts both filters' host calls
//! with uprobes and checks that they match; what kong_looker costs above
//! this filter is its own work, the rest is the host's. Like kong_looker,
//! it reads nginx's figures and the request's fields from
//! `$kong_looker_log` in one call where nginx defines it
//! (`kong_looker.nginx.conf`), the figures one by one and the header map
//! where not, and the header map beside a line of the earlier format.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::hint::black_box;
use std::ptr::null_mut;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

/// What kong_looker reads with `$kong_looker_log`.
const WITH_LINE: [&str; 2] = ["ngx.kong_looker_log", "kong.route_id"];

/// The properties kong_looker reads in the log phase of a proxied request
/// on plain HTTP without `$kong_looker_log`, in its order; then the clock.
const PROPERTIES: [&str; 8] = [
    "response.code",
    "ngx.request_time",
    "ngx.upstream_status",
    "ngx.upstream_response_time",
    "ngx.request_length",
    "ngx.bytes_sent",
    "kong.route_id",
    "ngx.remote_addr",
];

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http))
    }
}

struct Http;

thread_local! {
    /// Whether nginx defines `$kong_looker_log`; unknown at first.
    static LINE: Cell<Option<bool>> = const { Cell::new(None) };
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_log(&mut self) {
        // kong_looker asks for the line once, and never again if absent.
        if LINE.get() != Some(false) {
            let line = black_box(property(WITH_LINE[0]));
            LINE.set(Some(line.is_some()));
            if let Some(line) = line {
                // Without the request's fields (the earlier format), the
                // header map is read too. (kong_looker reads it also for a
                // request with a newline in a field, which the bench's
                // requests never have: no byte loop here to check.)
                if !line.starts_with(b"kl2|") {
                    black_box(request_header_map());
                }
                black_box(property(WITH_LINE[1]));
                return;
            }
        }
        for name in PROPERTIES {
            black_box(property(name));
        }
        black_box(hostcalls::get_current_time().ok());
        black_box(request_header_map());
    }
}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_property(path: *const u8, len: usize, data: *mut *mut u8, size: *mut usize)
    -> u32;
}

/// A property as kong_looker reads it: the dotted name as the path.
fn property(name: &str) -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as in `request_header_map`.
    unsafe {
        if proxy_get_property(name.as_ptr(), name.len(), &mut data, &mut size) != 0
            || data.is_null()
        {
            return None;
        }
        Some(Vec::from_raw_parts(data, size, size))
    }
}

/// The request header map as kong_looker reads it: raw, in one call.
fn request_header_map() -> Vec<u8> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host hands over a buffer it allocated through the SDK's
    // `proxy_on_memory_allocate`, of exactly `size` bytes.
    unsafe {
        if proxy_get_header_map_pairs(0, &mut data, &mut size) != 0 || data.is_null() {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}
