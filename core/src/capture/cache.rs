//! The capped maps behind a capturer's caches (identities, decoded tokens,
//! route names, agents).
//!
//! A full cache starts afresh rather than tracking what is least used,
//! because that bookkeeping would cost every hit. Freeing the old entries
//! all at once is what this module avoids: at high cardinality an identity
//! cache fills every second or so, and freeing its thousands of strings in
//! one go held a Wasm worker up for about 1.4 ms, queueing every request
//! behind it (`bench/RESULTS.md`, "Cost in Kong's real engine"). So the old
//! map is set aside, and each insert that follows frees a few of its
//! entries; the old table's memory goes when its last entry does.

use std::hash::Hash;

use foldhash::fast::FixedState;
use hashbrown::hash_map::IntoIter;
use hashbrown::{Equivalent, HashMap};

/// hashbrown's map rather than std's: lookups by [`Equivalent`] keys, so
/// byte-string keys are looked up without a copy (`kong_looker_proto::bytes`).
type Map<K, V> = HashMap<K, V, FixedState>;

/// Old entries freed per insert. A new map needs as many inserts to fill as
/// the old one held (or, when bytes filled it, about as many), so two per
/// insert free the old map long before the new one is full.
const FREED_PER_INSERT: usize = 2;

/// A map of at most `max_entries` entries and about `max_bytes` bytes.
#[derive(Debug)]
pub struct Cache<K, V> {
    live: Map<K, V>,
    /// The entries of the map before the last restart, freed a few at a time.
    retiring: Option<IntoIter<K, V>>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
}

impl<K, V> Cache<K, V> {
    /// What each entry costs against the byte cap beside its own size: its
    /// slot in the table. hashbrown keeps its buckets at most 7/8 full and
    /// doubles them when they fill, so a table holds up to 16/7 slots, each
    /// with a control byte, per entry. Without this a cache of many small
    /// values could hold many times its cap in its table alone.
    pub const SLOT_BYTES: usize = (size_of::<(K, V)>() + 1) * 16 / 7 + 1;
}

impl<K: Hash + Eq, V> Cache<K, V> {
    /// An empty cache whose hash tables are seeded with `seed`.
    pub fn new(max_entries: usize, max_bytes: usize, seed: u64) -> Self {
        Cache {
            live: Map::with_hasher(FixedState::with_seed(seed)),
            retiring: None,
            max_entries,
            max_bytes,
            bytes: 0,
        }
    }

    /// The value cached for `key`.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.live.get(key)
    }

    /// Whether `key` is cached.
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        self.live.contains_key(key)
    }

    /// Entries cached.
    #[inline]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether nothing is cached.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Entries set aside at the last restart and not freed yet.
    pub fn retiring(&self) -> usize {
        self.retiring.as_ref().map_or(0, ExactSizeIterator::len)
    }

    /// Caches `value`, which holds about `size` bytes on the heap, first
    /// starting afresh if the cache is full; then frees a few retired
    /// entries.
    // Out of line: a miss costs far more than the call, and the hot path
    // of the capturer stays small.
    #[inline(never)]
    pub fn insert(&mut self, key: K, value: V, size: usize) {
        // A key already cached keeps its slot.
        let charge = if self.live.contains_key(&key) {
            size
        } else {
            let charge = size.saturating_add(Self::SLOT_BYTES);
            if self.live.len() >= self.max_entries
                || self.bytes.saturating_add(charge) > self.max_bytes
            {
                self.restart();
            }
            charge
        };
        self.bytes = self.bytes.saturating_add(charge);
        self.live.insert(key, value);
        self.free_some();
    }

    /// Sets the entries aside for freeing. The new map is sized like the
    /// old one, so that refilling it never rehashes. Whatever an earlier
    /// restart left is freed now; it is little, by [`FREED_PER_INSERT`].
    #[cold]
    fn restart(&mut self) {
        let fresh = Map::with_capacity_and_hasher(self.live.len(), self.live.hasher().clone());
        let old = std::mem::replace(&mut self.live, fresh);
        self.retiring = Some(old.into_iter());
        self.bytes = 0;
    }

    fn free_some(&mut self) {
        let Some(old) = &mut self.retiring else {
            return;
        };
        for _ in 0..FREED_PER_INSERT {
            if old.next().is_none() {
                self.retiring = None;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Counts its drops, so a test sees when an entry is freed.
    struct Tracked(Rc<Cell<usize>>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_full_cache_starts_afresh_and_frees_the_old_entries_a_few_per_insert() {
        let freed = Rc::new(Cell::new(0));
        let mut c = Cache::new(100, usize::MAX, 7);
        for k in 0..100u64 {
            c.insert(k, Tracked(freed.clone()), 1);
        }
        assert_eq!((c.len(), c.retiring()), (100, 0));
        c.insert(100, Tracked(freed.clone()), 1);
        assert_eq!(c.len(), 1, "the new map holds only the new entry");
        assert!(c.get(&5).is_none() && c.contains_key(&100));
        assert_eq!(freed.get(), FREED_PER_INSERT, "not all 100 at once");
        assert_eq!(c.retiring(), 100 - FREED_PER_INSERT);
        for k in 101..151u64 {
            c.insert(k, Tracked(freed.clone()), 1);
        }
        assert_eq!(freed.get(), 100, "freed within 50 inserts");
        assert_eq!(c.retiring(), 0);
        assert_eq!(c.len(), 51);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_byte_cap_restarts_it_too_and_a_known_key_never_does() {
        let slot = Cache::<u64, &str>::SLOT_BYTES;
        let mut c = Cache::new(1000, 100 + 2 * slot, 7);
        c.insert(1u64, "a", 60);
        c.insert(1u64, "b", 30);
        assert_eq!((c.len(), c.get(&1)), (1, Some(&"b")));
        c.insert(2u64, "c", 30);
        assert_eq!(c.len(), 1, "90 bytes + 30, and two slots, pass the cap");
        assert_eq!(c.get(&2), Some(&"c"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_table_counts_against_the_byte_cap() {
        // Values with nothing on the heap: only their slots fill the cache.
        type Big = [u8; 100];
        let cap = 64 * 1024;
        let mut c: Cache<u64, Big> = Cache::new(usize::MAX, cap, 7);
        let mut restarts = 0;
        for k in 0..10_000u64 {
            let before = c.len();
            c.insert(k, [0; 100], 0);
            restarts += usize::from(c.len() < before);
            // hashbrown's buckets hold at most 7/8 of them full.
            let table = c.live.capacity() * 8 / 7 * (size_of::<(u64, Big)>() + 1);
            assert!(
                table <= cap,
                "a table of {table} bytes under a cap of {cap}"
            );
        }
        assert!(restarts > 10, "restarted {restarts} times");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_restart_before_the_old_entries_are_freed_frees_the_rest() {
        let freed = Rc::new(Cell::new(0));
        let slot = Cache::<u64, Tracked>::SLOT_BYTES;
        let mut c = Cache::new(10, 10 * (1 + slot), 7);
        for k in 0..10u64 {
            c.insert(k, Tracked(freed.clone()), 1);
        }
        // One entry as big as the cap: a restart on every insert.
        c.insert(10, Tracked(freed.clone()), 10 * (1 + slot));
        c.insert(11, Tracked(freed.clone()), 10 * (1 + slot));
        assert_eq!(freed.get(), 11, "the 10 set aside first, then entry 10");
        assert_eq!(c.len(), 1);
    }
}
