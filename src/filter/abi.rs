//! The host calls of every request, made on the ABI directly:
//! - reading the request header map: the SDK's `get_http_request_headers*`
//!   turn a header name that is not UTF-8 into a panic, and a panic is a
//!   trap that fails the request;
//! - reading a property: the SDK allocates the path twice per read (a `Vec`
//!   of segments, then its serialized form) and panics on a status it does
//!   not expect; a dotted name is its own one-segment path;
//! - reading the clock: the SDK's `SystemTime` costs a subtraction of
//!   timespecs and a 128-bit multiply (a call on wasm32) to come back to
//!   milliseconds, on every request.
#![allow(unsafe_code)]

use std::ptr::null_mut;

/// `MapType::HttpRequestHeaders` in the proxy-wasm ABI.
const HTTP_REQUEST_HEADERS: u32 = 0;
/// `Status::Ok`.
const STATUS_OK: u32 = 0;

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
}

/// The host's wall clock, Unix ms; 0 if the host cannot tell.
pub fn now_ms() -> i64 {
    let mut ns: u64 = 0;
    // SAFETY: the host writes one u64 during the call.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut ns) };
    if status != STATUS_OK {
        return 0;
    }
    i64::try_from(ns / 1_000_000).unwrap_or(0)
}

/// A property by its dotted name (ngx_wasm_module joins a path's segments
/// with dots before the lookup, so the name reads as one segment); nothing
/// when absent or refused.
pub fn property(name: &str) -> Option<Vec<u8>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the path is read by the host during the call only; the value
    // is handed over as in `request_header_map`.
    unsafe {
        if proxy_get_property(name.as_ptr(), name.len(), &mut data, &mut size) != STATUS_OK
            || data.is_null()
        {
            return None;
        }
        Some(Vec::from_raw_parts(data, size, size))
    }
}

/// The serialized request header map, or nothing when the host refuses.
pub fn request_header_map() -> Vec<u8> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer it allocated through the SDK's
    // `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes)
    // and its size; ownership passes to us, as in the SDK's own
    // `get_map_bytes`.
    unsafe {
        if proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, &mut data, &mut size) != STATUS_OK
            || data.is_null()
        {
            return Vec::new();
        }
        Vec::from_raw_parts(data, size, size)
    }
}
