//! kong-looker's capture core: everything that turns what a gateway saw
//! into records, and records into batches, with no host calls. The hosts
//! (the proxy-wasm filter, the plugin server for Kong's external-plugin
//! protocol, the collector's http-log mapping) are thin adapters around
//! it; it builds natively and for wasm32. It depends on the codec
//! (`kong-looker-proto`) only.
//!
//! # Layout
//! - [`config`]: the JSON config, its defaults and its checks.
//! - [`capture`]: the parsers, identity, privacy, sampling, and the
//!   per-chain [`capture::capturer`] behind [`capture::capturer::LogSource`].
//! - [`outbox`]: the buffer and its batches on their way to the collector:
//!   cutting, sending, retrying, dropping and counting.
//! - [`signature`]: a pending batch's signature, worked out ahead of its
//!   send a slice at a time.
//! - [`destination`]: where batches go, and the headers of a signed call.
//! - [`log_limit`]: which repeated error-log lines are held back.
//!
//! Dependencies run one way: `capture` and `outbox` read `config`;
//! `config` reads nothing of theirs.

// In a Wasm host a panic is a trap: the request fails with a 500 and the
// worker's buffer is wiped. No panicking constructs here.
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

pub mod capture;
pub mod config;
pub mod destination;
pub mod log_limit;
pub mod outbox;
pub mod signature;

pub use kong_looker_proto as proto;
