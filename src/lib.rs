//! kong-looker: the proxy-wasm filter that Kong Gateway loads as
//! `kong_looker`.
//!
//! This crate currently re-exports the shared wire codec; request capture
//! (issue 4) and delivery (issue 5) are not written yet, so the `.wasm`
//! built from it does not capture anything.

pub use kong_looker_proto as proto;
