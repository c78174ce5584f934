//! kong-looker: the proxy-wasm filter that Kong Gateway loads as
//! `kong_looker`.
//!
//! # Layout
//! - [`capture`]: pure parsers that turn request data into record fields
//!   (path templates, agents, JWT, SigV4, Basic, DN, router JSON).
//!
//! The filter's configuration, host glue and delivery are issues 4 and 5;
//! until they land, the `.wasm` built from this crate captures nothing.

// Inside Kong a panic is a trap: the request fails with a 500 and the
// worker's buffer is wiped. No panicking constructs in the filter.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod capture;

pub use kong_looker_proto as proto;
