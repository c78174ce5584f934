//! kong-looker's proxy-wasm filter, which Kong Gateway 3.8–3.10 load as
//! `kong_looker`: the host adapter around [`kong_looker_core`].
//!
//! # Layout
//! - `filter/` (wasm32-wasip1 only): the proxy-wasm contexts, the worker
//!   state and the metrics; the only code that calls the host.
//! - `allocator`: the cache of small freed blocks in front of the
//!   filter's allocator (natively, for its tests only).
//!
//! Everything else (config, capture, the outbox) is the core's, and runs
//! natively too.

// Inside Kong a panic is a trap: the request fails with a 500 and the
// worker's buffer is wiped. No panicking constructs in the filter.
// Each crate that runs in a gateway repeats this block on purpose: Cargo's
// [lints] tables cannot exempt tests, which may unwrap.
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

#[cfg(any(target_os = "wasi", test))]
mod allocator;
#[cfg(target_os = "wasi")]
mod filter;

pub use kong_looker_core as core;
pub use kong_looker_proto as proto;
