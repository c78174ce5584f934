//! Ids the builder handed out, by the keys a producer gave for them
//! ([`crate::Memo`]) or that stand for a value exactly (an outcome): a
//! record whose endpoint, identity, agent or outcome was met before costs
//! one slot read instead of building, hashing and comparing its lookup key.
//!
//! Each table is direct-mapped, or for keys that are hashes, four-way set
//! associative in one cache line: a miss only costs the lookup it would
//! have cost anyway, so the memo needs no eviction policy. A table grows with
//! the dictionary table it stands in front of, so that callers keep to
//! slots of their own at high cardinality: the 21,800 callers of the
//! high-cardinality mix shared a fixed 4,096 slots, and each miss hashed
//! and compared a dozen strings in tables far larger than a core's cache
//! (`bench/RESULTS.md`, "Where the time goes, not the instructions"). Ids
//! are valid for one dictionary generation; a new one clears the memo.

/// Slot bits of a new table for endpoints and identities: 4,096 slots in
/// 64 KiB, room for a few thousand busy routes and callers.
const SLOT_BITS: u32 = 12;
/// Slot bits a table for endpoints and identities grows to at most:
/// 65,536 slots in 1 MiB.
const MAX_SLOT_BITS: u32 = 16;
/// Slot bits of a table for agents and outcomes, which have a few hundred
/// values at most: 256 slots in 4 KiB.
const FEW_SLOT_BITS: u32 = 8;

/// One table: a key and the id it stood for, or `(0, 0)`.
pub(super) struct IdMemo {
    slots: Vec<(u64, u32)>,
    bits: u32,
    max_bits: u32,
}

impl IdMemo {
    /// A table for keys of many values.
    pub(super) fn new() -> Self {
        IdMemo {
            slots: Vec::new(),
            bits: SLOT_BITS,
            max_bits: MAX_SLOT_BITS,
        }
    }

    /// A table for keys of a few hundred values.
    pub(super) fn few() -> Self {
        IdMemo {
            slots: Vec::new(),
            bits: FEW_SLOT_BITS,
            max_bits: FEW_SLOT_BITS,
        }
    }

    /// The id remembered for `key`; `None` for key 0 and on a miss.
    #[inline]
    pub(super) fn get(&self, key: u64) -> Option<u32> {
        if key == 0 {
            return None;
        }
        match self.slots.get(slot(key, self.bits)) {
            Some(&(k, id)) if k == key => Some(id),
            _ => None,
        }
    }

    /// Remembers `id` for `key`, in place of whatever had its slot.
    pub(super) fn put(&mut self, key: u64, id: u32) {
        if key == 0 {
            return;
        }
        // Allocated on first use: a producer that gives no keys pays nothing.
        if self.slots.is_empty() {
            self.slots.resize(1 << self.bits, (0, 0));
        }
        if let Some(s) = self.slots.get_mut(slot(key, self.bits)) {
            *s = (key, id);
        }
    }

    /// Grows the table to at least twice as many slots as `entries`, the
    /// size of the dictionary table behind it, up to its largest; what it
    /// remembered moves to the new slots.
    pub(super) fn fit(&mut self, entries: u32) {
        let mut bits = self.bits;
        while bits < self.max_bits && u64::from(entries).saturating_mul(2) > 1u64 << bits {
            bits = bits.saturating_add(1);
        }
        if bits == self.bits {
            return;
        }
        self.bits = bits;
        if self.slots.is_empty() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); 1 << bits]);
        for (key, id) in old {
            self.put(key, id);
        }
    }

    /// Forgets every id: a new generation numbers its entries afresh.
    pub(super) fn clear(&mut self) {
        self.slots.fill((0, 0));
    }
}

/// Entries of a [`HashMemo`] set: one 64-byte line holds them.
const WAYS: usize = 4;
/// Set bits of a new table of client addresses: 1,024 entries in 16 KiB.
const ADDRESS_SET_BITS: u32 = 8;
/// Set bits a table of client addresses grows to at most: 32,768 entries
/// in 512 KiB, which hold some seven in ten records' addresses at 200,000
/// addresses (`bench/RESULTS.md`).
const MAX_ADDRESS_SET_BITS: u32 = 13;
/// Set bits of a new table of callers: 4,096 entries in 64 KiB.
const CALLER_SET_BITS: u32 = 10;
/// Set bits a table of callers grows to at most: 65,536 entries in 1 MiB.
const MAX_CALLER_SET_BITS: u32 = 14;

/// Ids by a 64-bit hash, in sets of four entries that share one 64-byte
/// line, so that four hashes that land in one set are all kept.
///
/// - Client addresses, which have no key from the producer, by the
///   address's hash. Found in the dictionary's string table, an address
///   costs four reads one after another (the table's control bytes, its
///   bucket, the entry, the text), and at high cardinality each missed the
///   cache: some 0.4 µs a request in Kong's engine. Here it is one read.
///   The text itself is not kept: the hash is the builder's, seeded per
///   instance, so two texts share it with a chance of 2^-64 per pair, as
///   the capturer's caller and endpoint keys do. Kept, it filled a slot
///   four times this size, and the same memory held fewer addresses.
/// - Callers, by the producer's key ([`crate::Memo::identity`]): a
///   capturer's keys are hashes of the caller's evidence, and in a table
///   of one slot a key, the high-cardinality mix's 21,800 callers in
///   65,536 slots would leave more than a quarter of them sharing a slot.
pub(super) struct HashMemo {
    sets: Vec<HashSet>,
    bits: u32,
    max_bits: u32,
    /// The way the next new entry of a full set takes, in turn.
    next: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct HashSet {
    /// A hash and its id; id 0: empty.
    entries: [(u64, u32); WAYS],
}

const EMPTY: HashSet = HashSet {
    entries: [(0, 0); WAYS],
};

impl HashMemo {
    /// A table for client addresses.
    pub(super) fn addresses() -> Self {
        HashMemo {
            sets: Vec::new(),
            bits: ADDRESS_SET_BITS,
            max_bits: MAX_ADDRESS_SET_BITS,
            next: 0,
        }
    }

    /// A table for callers.
    pub(super) fn callers() -> Self {
        HashMemo {
            sets: Vec::new(),
            bits: CALLER_SET_BITS,
            max_bits: MAX_CALLER_SET_BITS,
            next: 0,
        }
    }

    /// The id remembered for the text whose hash is `hash`.
    #[inline]
    pub(super) fn get(&self, hash: u64) -> Option<u32> {
        let set = self.sets.get(slot(hash, self.bits))?;
        set.entries
            .iter()
            .find(|&&(h, id)| h == hash && id != 0)
            .map(|&(_, id)| id)
    }

    /// Remembers `id` for the text whose hash is `hash`: in place of its
    /// old id, or in an empty entry of its set, or else in place of one
    /// of the set's entries, each in turn.
    pub(super) fn put(&mut self, hash: u64, id: u32) {
        if id == 0 {
            return;
        }
        if self.sets.is_empty() {
            self.sets.resize(1 << self.bits, EMPTY);
        }
        let next = &mut self.next;
        let Some(set) = self.sets.get_mut(slot(hash, self.bits)) else {
            return;
        };
        let way = set
            .entries
            .iter()
            .position(|&(h, id)| h == hash && id != 0)
            .or_else(|| set.entries.iter().position(|&(_, id)| id == 0))
            .unwrap_or_else(|| {
                *next = next.wrapping_add(1);
                *next % WAYS
            });
        if let Some(e) = set.entries.get_mut(way) {
            *e = (hash, id);
        }
    }

    /// Grows the table to at least twice as many entries as `entries`, the
    /// size of the string table behind it, up to its largest; what it
    /// remembered moves to the new sets.
    pub(super) fn fit(&mut self, entries: u32) {
        let mut bits = self.bits;
        while bits < self.max_bits && u64::from(entries).saturating_mul(2) > (WAYS as u64) << bits {
            bits = bits.saturating_add(1);
        }
        if bits == self.bits {
            return;
        }
        self.bits = bits;
        if self.sets.is_empty() {
            return;
        }
        let old = std::mem::replace(&mut self.sets, vec![EMPTY; 1 << bits]);
        for (hash, id) in old.iter().flat_map(|s| s.entries) {
            self.put(hash, id);
        }
    }

    /// Forgets every id.
    pub(super) fn clear(&mut self) {
        self.sets.fill(EMPTY);
    }
}

/// The slot of `key`: its top bits after a multiplication, so that keys
/// counted up from one spread as well as hashes do.
fn slot(key: u64, bits: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> u64::BITS.saturating_sub(bits)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOTS: usize = 1 << SLOT_BITS;

    #[test]
    fn a_table_grows_with_the_entries_behind_it_and_keeps_what_it_remembered() {
        let mut memo = IdMemo::new();
        memo.fit(100_000);
        assert!(memo.slots.is_empty(), "allocated on first use");
        let mut memo = IdMemo::new();
        for key in 1..=1000u64 {
            memo.put(key, key as u32);
        }
        memo.fit(1000);
        assert_eq!(memo.slots.len(), SLOTS, "2,000 slots wanted: no growth");
        let kept_before: Vec<u64> = (1..=1000).filter(|&k| memo.get(k).is_some()).collect();
        memo.fit(20_000);
        assert_eq!(memo.slots.len(), 1 << 16, "40,000 slots wanted");
        for &k in &kept_before {
            assert_eq!(memo.get(k), Some(k as u32), "{k} moved with the growth");
        }
        // Keys that shared a slot at 4,096 mostly have their own now.
        for key in 1..=20_000u64 {
            memo.put(key, key as u32);
        }
        let kept = (1..=20_000u64).filter(|&k| memo.get(k).is_some()).count();
        assert!(kept > 15_000, "{kept} of 20,000");
        memo.fit(10_000_000);
        assert_eq!(
            memo.slots.len(),
            1 << MAX_SLOT_BITS,
            "never past its largest"
        );
        let mut few = IdMemo::few();
        few.put(1, 1);
        few.fit(100_000);
        assert_eq!(
            few.slots.len(),
            1 << FEW_SLOT_BITS,
            "a table of few values stays small"
        );
    }

    #[test]
    fn an_address_is_found_by_its_hash_and_four_share_a_set() {
        let mut memo = HashMemo::addresses();
        assert_eq!(memo.get(42), None);
        assert!(memo.sets.is_empty(), "allocated on first use");
        memo.put(42, 7);
        assert_eq!(memo.get(42), Some(7));
        memo.put(42, 8);
        assert_eq!(memo.get(42), Some(8), "a hash keeps one entry");
        memo.put(43, 0);
        assert_eq!(memo.get(43), None, "id 0 means none");
        // Hashes of one set: four are kept side by side, and a fifth takes
        // one entry's place, never answering for it.
        let same: Vec<u64> = (1..)
            .filter(|&h| slot(h, ADDRESS_SET_BITS) == slot(1000, ADDRESS_SET_BITS))
            .take(WAYS + 1)
            .collect();
        memo.clear();
        for (i, &h) in same.iter().take(WAYS).enumerate() {
            memo.put(h, i as u32 + 1);
        }
        for (i, &h) in same.iter().take(WAYS).enumerate() {
            assert_eq!(memo.get(h), Some(i as u32 + 1), "entry {i}");
        }
        let fifth = same[WAYS];
        memo.put(fifth, 99);
        assert_eq!(memo.get(fifth), Some(99));
        let kept = same
            .iter()
            .take(WAYS)
            .filter(|&&h| memo.get(h).is_some())
            .count();
        assert_eq!(kept, WAYS - 1, "one entry made room");
        // Each new hash of a full set takes the next entry in turn, so four
        // new ones replace the four old ones, not one another.
        let newer: Vec<u64> = (same[WAYS] + 1..)
            .filter(|&h| slot(h, ADDRESS_SET_BITS) == slot(1000, ADDRESS_SET_BITS))
            .take(WAYS)
            .collect();
        for &h in &newer {
            memo.put(h, 5);
        }
        assert!(newer.iter().all(|&h| memo.get(h) == Some(5)));
        assert_eq!(size_of::<HashSet>(), 64, "one cache line a set");
        memo.clear();
        assert_eq!(memo.get(fifth), None);
    }

    #[test]
    fn an_address_table_grows_with_the_strings_and_keeps_what_it_remembered() {
        let mut memo = HashMemo::addresses();
        let h = |i: u64| {
            crate::bytes::hash(&foldhash::fast::FixedState::with_seed(3), &i.to_le_bytes())
        };
        for i in 1..=500u64 {
            memo.put(h(i), i as u32);
        }
        memo.fit(500);
        assert_eq!(
            memo.sets.len(),
            1 << ADDRESS_SET_BITS,
            "1,000 entries wanted: no growth"
        );
        let kept: Vec<u64> = (1..=500).filter(|&i| memo.get(h(i)).is_some()).collect();
        assert!(kept.len() > 450, "{} of 500", kept.len());
        memo.fit(5_000);
        assert_eq!(memo.sets.len(), 1 << 12, "10,000 entries wanted");
        for &i in &kept {
            assert_eq!(memo.get(h(i)), Some(i as u32), "{i} moved with the growth");
        }
        for i in 1..=5_000u64 {
            memo.put(h(i), i as u32);
        }
        let kept = (1..=5_000u64)
            .filter(|&i| memo.get(h(i)) == Some(i as u32))
            .count();
        assert!(kept > 4_900, "{kept} of 5,000");
        memo.fit(10_000_000);
        assert_eq!(
            memo.sets.len(),
            1 << MAX_ADDRESS_SET_BITS,
            "never past its largest"
        );
        assert_eq!(memo.get(h(1)), Some(1));
    }

    #[test]
    fn remembers_until_cleared_and_a_slot_keeps_the_last_key() {
        let mut memo = IdMemo::new();
        assert_eq!(memo.get(7), None);
        assert!(memo.slots.is_empty());
        memo.put(0, 5);
        assert_eq!(memo.get(0), None, "key 0 means none");
        for key in 1..=SLOTS as u64 {
            memo.put(key, key as u32 + 100);
        }
        // Keys counted up from one mostly land in slots of their own.
        let kept = (1..=SLOTS as u64)
            .filter(|&k| memo.get(k) == Some(k as u32 + 100))
            .count();
        assert!(kept > SLOTS / 2, "{kept} of {SLOTS}");
        // A key sharing a slot replaces the one before, never answers for it.
        let other = (SLOTS as u64 + 1..)
            .find(|&k| slot(k, SLOT_BITS) == slot(1, SLOT_BITS))
            .unwrap();
        memo.put(other, 9);
        assert_eq!(memo.get(other), Some(9));
        assert_eq!(memo.get(1), None);
        memo.clear();
        assert_eq!(memo.get(other), None);
        assert_eq!(memo.slots.len(), SLOTS);
    }
}
