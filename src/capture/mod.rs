//! Pure capture logic: turning what Kong shows a filter about a request into
//! the fields of a record. Nothing here calls the host, so every parser runs
//! natively, on wasm32 and under the fuzzers; `filter/` does the host calls.
//!
//! - [`path`]: path templates with bounded cardinality.
//! - [`agent`]: agent family from User-Agent, by `agents.tsv`.
//! - [`jwt`]: JWT and OIDC claims, unverified, never the token.
//! - [`sigv4`]: AWS SigV4 access key, region and service.
//! - [`basic`]: HTTP Basic user name.
//! - [`dn`]: certificate subject common name.
//! - [`router`]: route and service id and name from Kong's router JSON.
//! - [`privacy`]: client address kept, truncated or hashed; keyed pseudonyms.
//! - [`headers`]: the proxy-wasm header map, decoded without trusting it.
//! - [`timing`]: nginx seconds, upstream time lists, statuses, sizes, trace ids.
//! - [`identity`]: the strongest identity evidence, verified or claimed.
//! - [`sampler`]: which records are kept, and their weights.
//! - [`capturer`]: one chain's capture, from headers and properties to a record.

pub mod agent;
pub mod basic;
pub mod capturer;
pub mod dn;
pub mod headers;
pub mod identity;
pub mod jwt;
pub mod path;
pub mod privacy;
pub mod router;
pub mod sampler;
pub mod sigv4;
pub mod timing;
