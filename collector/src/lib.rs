//! kong-looker's collector: receives the `kong_looker` filter's batches and
//! Kong's http-log entries, and commits each exactly once to a table Looker
//! reads. It depends on the codec and on the capture core (for the http-log
//! mapping), never on a host.
//!
//! # Layout
//! - [`api`]: the HTTP endpoints and their refusals.
//! - [`pipeline`]: the bounded queue and the committer that applies
//!   producers' dictionaries and group-commits.
//! - [`store`]: SQLite and PostgreSQL, with their migrations.
//! - [`row`]: the requests table's columns, the contract with `looker/`.
//! - [`http_log`]: Kong http-log JSON mapped onto that table.
//! - [`looker`]: the optional Looker datagroup trigger after commits.
//! - [`metrics`]: the numbers served at `/metrics`.
//! - [`server`]: settings, start-up and graceful shutdown.
//! - [`listen`]: TCP and unix-socket listeners, and serving them all.
//! - [`tls`]: the TLS listener, over either kind.

pub mod api;
pub mod http_log;
pub mod listen;
pub mod looker;
pub mod metrics;
pub mod pipeline;
pub mod row;
pub mod server;
pub mod store;
pub mod tls;
