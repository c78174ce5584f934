//! The keys a capturer gives the batch builder for what it already knows
//! ([`kong_looker_proto::Memo`]): a fresh key for each cached route's
//! names, and an endpoint's key made of the keys and short texts it is
//! built from; a caller's key is its evidence's hash, salted per
//! capturer, made where the capturer assembles. With them, a record of a
//! route and caller met before spares the builder its key building and
//! hashing.
//!
//! The builder's contract is that a key stands for one value for its whole
//! life. Fresh keys come from one counter per process and are never
//! reused, so a value evicted from a cache and resolved again gets a new
//! key; and a capturer's own key is part of every endpoint key, because
//! the workspace and path templates are a capturer's own.

use core::hash::{BuildHasher, Hasher};
use core::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::FixedState;
use kong_looker_proto::v1::Method;

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A key no other value has had in this process; never 0.
pub fn fresh() -> u64 {
    // 2^64 keys outlast any process; `max(1)` keeps 0 meaning none anyway.
    NEXT.fetch_add(1, Ordering::Relaxed).max(1)
}

/// Makes a capturer's endpoint keys.
#[derive(Debug)]
pub struct EndpointKeys {
    /// Seeded with the capturer's own fresh key as well as its seed, so
    /// that no two capturers share keys.
    hasher: FixedState,
}

impl EndpointKeys {
    /// Keys for one capturer; `seed` is its per-instance seed, so that
    /// clients cannot aim at collisions.
    pub fn new(seed: u64) -> Self {
        let capturer = fresh().wrapping_mul(0x9e37_79b9_7f4a_7c15);
        EndpointKeys {
            hasher: FixedState::with_seed(seed ^ capturer),
        }
    }

    /// The key of the endpoint made of these parts: `names` is the key of
    /// the route's names (0 without a route), which stands for the route
    /// id too. Equal parts give equal keys; unequal parts collide with a
    /// chance of 2^-64 per pair, as the capturer's identity cache does.
    pub fn key(
        &self,
        names: u64,
        method: Method,
        method_text: &str,
        host: &str,
        path: &str,
    ) -> u64 {
        // One 16-byte write for the numbers and the lengths (which keep the
        // texts apart), then one per text: foldhash takes integers and
        // `str`'s end marker through 128-bit shifts, calls on wasm32.
        let field = |n: usize, max: u64| u64::try_from(n).unwrap_or(max).min(max);
        let packed = field(method as usize, 0xff)
            | field(method_text.len(), 0xff) << 8
            | field(host.len(), 0xffff) << 16
            | field(path.len(), 0xffff_ffff) << 32;
        let mut head = [0u8; 16];
        let (a, b) = head.split_at_mut(8);
        a.copy_from_slice(&names.to_le_bytes());
        b.copy_from_slice(&packed.to_le_bytes());
        let mut h = self.hasher.build_hasher();
        h.write(&head);
        h.write(method_text.as_bytes());
        h.write(host.as_bytes());
        h.write(path.as_bytes());
        h.finish().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_part_and_by_capturer() {
        let a = fresh();
        assert!(fresh() > a && a > 0);
        let keys = EndpointKeys::new(7);
        let k = keys.key(3, Method::Get, "", "api.example.com", "/users/{id}");
        assert_eq!(
            k,
            keys.key(3, Method::Get, "", "api.example.com", "/users/{id}")
        );
        for other in [
            keys.key(4, Method::Get, "", "api.example.com", "/users/{id}"),
            keys.key(3, Method::Post, "", "api.example.com", "/users/{id}"),
            keys.key(3, Method::Get, "X", "api.example.com", "/users/{id}"),
            keys.key(3, Method::Get, "", "api.example.org", "/users/{id}"),
            keys.key(3, Method::Get, "", "api.example.com", "/users"),
            // Parts are delimited: moving bytes between them changes the key.
            keys.key(3, Method::Get, "", "api.example.com/users", "/{id}"),
            EndpointKeys::new(7).key(3, Method::Get, "", "api.example.com", "/users/{id}"),
        ] {
            assert_ne!(k, other);
            assert_ne!(other, 0);
        }
    }
}
