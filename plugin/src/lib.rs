//! kong-looker as a Kong external plugin server (protocol `ProtoBuf:1`),
//! for every Kong 3.x, Wasm or not. Kong starts the binary, asks it about
//! itself with `-dump`, and calls it over a Unix socket; in the log phase
//! it reads Kong's log snapshot, captures the same record as the filter
//! through the core's capturer, and ships signed batches through the
//! core's outbox to the same collector.
//!
//! # Layout
//! - [`frame`]: length-prefixed frames, bounded.
//! - [`rpc`]: the socket's messages (prost, from `proto/`).
//! - [`schema`]: the Kong schema, from `kong_looker.meta.json`.
//! - [`source`]: the log snapshot as the core's `LogSource`.
//! - [`server`]: the socket, the instances and the commands.
//! - [`delivery`]: one outbox and sender thread per collector.
//! - [`spool`]: the optional on-disk spool of batches given up on.
//! - [`transport`]: the HTTP agent for a collector: TCP or a unix socket,
//!   `collector_host` as Host and TLS name, the trusted roots.
//! - [`metrics`]: the counters in Prometheus' text format.

// A panic would cost Kong an event and its connection. The same block as
// every crate that runs in a gateway, on purpose: Cargo's [lints] tables
// cannot exempt tests, which may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod delivery;
pub mod frame;
pub mod metrics;
pub mod rpc;
pub mod schema;
pub mod server;
pub mod source;
pub mod spool;
pub mod transport;
