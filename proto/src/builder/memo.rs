//! Ids the builder handed out, by the keys a producer gave for them
//! ([`crate::Memo`]) or that stand for a value exactly (an outcome): a
//! record whose endpoint, identity, agent or outcome was met before costs
//! one slot read instead of building, hashing and comparing its lookup key.
//!
//! Each table is direct-mapped: a miss only costs the lookup it would have
//! cost anyway, so the memo needs no eviction policy. A table grows with
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

/// Bytes of a client address's text that a [`TextMemo`] slot holds: any
/// address as recorded (IPv6 at its longest is 39, cut to a /48 or
/// pseudonymised shorter still) fits.
const TEXT_BYTES: usize = 59;
/// Slot bits of a new table of client addresses: 1,024 slots in 64 KiB.
const TEXT_SLOT_BITS: u32 = 10;
/// Slot bits a table of client addresses grows to at most: 8,192 slots in
/// 512 KiB, which hold some nine in ten records' addresses at 5,000
/// addresses and over half at 200,000.
const MAX_TEXT_SLOT_BITS: u32 = 13;

/// A text's id, the text kept beside it in one 64-byte slot: a record's
/// client address, which has no key from the producer. Found in the
/// dictionary's string table, an address costs four reads one after
/// another (the table's control bytes, its bucket, the entry, the text),
/// and at high cardinality each missed the cache: some 0.4 µs a request
/// in Kong's engine. A slot here is one read.
pub(super) struct TextMemo {
    slots: Vec<TextSlot>,
    bits: u32,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct TextSlot {
    /// 0: empty.
    id: u32,
    len: u8,
    text: [u8; TEXT_BYTES],
}

const EMPTY: TextSlot = TextSlot {
    id: 0,
    len: 0,
    text: [0; TEXT_BYTES],
};

impl TextMemo {
    pub(super) fn new() -> Self {
        TextMemo {
            slots: Vec::new(),
            bits: TEXT_SLOT_BITS,
        }
    }

    /// The id remembered for `text`, whose hash is `hash`.
    #[inline]
    pub(super) fn get(&self, hash: u64, text: &[u8]) -> Option<u32> {
        let s = self.slots.get(slot(hash, self.bits))?;
        let same =
            s.id != 0 && usize::from(s.len) == text.len() && s.text.get(..text.len()) == Some(text);
        same.then_some(s.id)
    }

    /// Remembers `id` for `text`, in place of whatever had its slot; a
    /// text longer than a slot holds is not remembered.
    pub(super) fn put(&mut self, hash: u64, text: &[u8], id: u32) {
        let (Ok(len), true) = (u8::try_from(text.len()), text.len() <= TEXT_BYTES) else {
            return;
        };
        if id == 0 {
            return;
        }
        if self.slots.is_empty() {
            self.slots.resize(1 << self.bits, EMPTY);
        }
        if let Some(s) = self.slots.get_mut(slot(hash, self.bits)) {
            let mut kept = EMPTY;
            if let Some(t) = kept.text.get_mut(..text.len()) {
                t.copy_from_slice(text);
            }
            *s = TextSlot { id, len, ..kept };
        }
    }

    /// Grows the table to at least twice as many slots as `entries`, the
    /// size of the string table behind it, up to its largest. The slots
    /// start empty: a text's slot comes from its hash, which the memo does
    /// not keep, and growing happens a few times a generation.
    pub(super) fn fit(&mut self, entries: u32) {
        let mut bits = self.bits;
        while bits < MAX_TEXT_SLOT_BITS && u64::from(entries).saturating_mul(2) > 1u64 << bits {
            bits = bits.saturating_add(1);
        }
        if bits != self.bits {
            self.bits = bits;
            if !self.slots.is_empty() {
                self.slots = vec![EMPTY; 1 << bits];
            }
        }
    }

    /// Forgets every id.
    pub(super) fn clear(&mut self) {
        self.slots.fill(EMPTY);
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
    fn a_text_is_found_only_as_it_was_put_and_a_long_one_is_not_kept() {
        let mut memo = TextMemo::new();
        let h =
            |t: &str| crate::bytes::hash(&foldhash::fast::FixedState::with_seed(3), t.as_bytes());
        assert_eq!(memo.get(h("10.0.0.1"), b"10.0.0.1"), None);
        assert!(memo.slots.is_empty());
        memo.put(h("10.0.0.1"), b"10.0.0.1", 7);
        assert_eq!(memo.get(h("10.0.0.1"), b"10.0.0.1"), Some(7));
        // Another text that lands in the same slot is not taken for it,
        // nor is a prefix or an extension of it.
        for other in ["10.0.0.10", "10.0.0.", ""] {
            assert_eq!(memo.get(h("10.0.0.1"), other.as_bytes()), None, "{other:?}");
        }
        let v6 = "2a02:1234:5678:9abc:1d2e:3f4a:5b6c:7d8e";
        memo.put(h(v6), v6.as_bytes(), 9);
        assert_eq!(memo.get(h(v6), v6.as_bytes()), Some(9));
        let long = "x".repeat(TEXT_BYTES + 1);
        memo.put(h(&long), long.as_bytes(), 11);
        assert_eq!(
            memo.get(h(&long), long.as_bytes()),
            None,
            "longer than a slot"
        );
        let most = "y".repeat(TEXT_BYTES);
        memo.put(h(&most), most.as_bytes(), 12);
        assert_eq!(memo.get(h(&most), most.as_bytes()), Some(12));
        memo.put(h("10.0.0.2"), b"10.0.0.2", 0);
        assert_eq!(
            memo.get(h("10.0.0.2"), b"10.0.0.2"),
            None,
            "id 0 means none"
        );
        // Growing starts the slots afresh; clearing forgets every id.
        memo.fit(100_000);
        assert_eq!(memo.slots.len(), 1 << MAX_TEXT_SLOT_BITS);
        assert_eq!(memo.get(h("10.0.0.1"), b"10.0.0.1"), None);
        memo.put(h("10.0.0.1"), b"10.0.0.1", 7);
        memo.clear();
        assert_eq!(memo.get(h("10.0.0.1"), b"10.0.0.1"), None);
        assert_eq!(size_of::<TextSlot>(), 64, "one cache line a slot");
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
