//! The one host call the SDK cannot make safely for us: reading a whole
//! header map. The SDK's `get_http_request_headers*` turn a header name
//! that is not UTF-8 into a panic, and a panic is a trap that fails the
//! request; this reads the same ABI call and decodes it without trusting
//! the bytes.
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
