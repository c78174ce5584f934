//! kong-looker: the proxy-wasm filter that Kong Gateway loads as
//! `kong_looker`.
//!
//! # Layout
//! - [`config`]: the JSON config, its defaults and its checks.
//! - [`capture`]: pure capture logic that turns request data into records
//!   (parsers, identity, sampling, and the per-chain [`capture::capturer`]).
//! - [`log_limit`]: which repeated error-log lines are held back.
//! - [`outbox`]: the worker's buffer and its batches on their way to the
//!   collector: cutting, sending, retrying, dropping and counting.
//! - `filter/` (wasm32-wasip1 only): the proxy-wasm contexts, the only code
//!   that calls the host.

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
pub mod config;
pub mod log_limit;
pub mod outbox;

#[cfg(target_os = "wasi")]
mod filter;

pub use kong_looker_proto as proto;
