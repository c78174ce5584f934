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
//! - [`log_line`]: `$kong_looker_log`, nginx's figures in one read.
//! - [`timing`]: nginx seconds, upstream time lists, statuses, sizes, trace ids.
//! - [`identity`]: the strongest identity evidence, verified or claimed.
//! - [`sampler`]: which records are kept, and their weights.
//! - [`capturer`]: one chain's capture, from headers and properties to a record.
//! - [`memo`]: the keys by which a capturer tells the builder what it knows.
//! - [`ai`]: Kong's AI Gateway figures (tokens, cost, models) from a log entry.
//! - [`cache`]: the capped caches, whose old entries are freed a few at a time.

/// Hash maps of the capture caches: foldhash, seeded per instance, because
/// SipHash costs more than the lookups it guards on this hot path, and a
/// random seed keeps clients from aiming at collisions.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
/// A set with [`FastMap`]'s hasher.
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::FixedState>;

/// `s` cut to at most `max` bytes at a character boundary: how every
/// parser bounds what it reads and what it keeps.
pub fn cut(s: &str, max: usize) -> &str {
    s.get(..s.floor_char_boundary(max)).unwrap_or("")
}

pub mod agent;
pub mod ai;
pub mod basic;
pub mod cache;
pub mod capturer;
pub mod dn;
pub mod headers;
pub mod identity;
pub mod jwt;
pub mod log_line;
pub mod memo;
pub mod path;
pub mod privacy;
pub mod router;
pub mod sampler;
pub mod sigv4;
pub mod timing;
