//! Ids the builder handed out, by the keys a producer gave for them
//! ([`crate::Memo`]) or that stand for a value exactly (an outcome): a
//! record whose endpoint, identity, agent or outcome was met before costs
//! one slot read instead of building, hashing and comparing its lookup key.
//!
//! Each table is direct-mapped and small: a miss only costs the lookup it
//! would have cost anyway, so the memo needs no eviction policy. Ids are
//! valid for one dictionary generation; a new one clears the memo.

/// Slot bits of a table for endpoints and identities: 4,096 slots in
/// 64 KiB, room for a few thousand busy routes and callers (the reference
/// mix has 2,000 consumers; a miss builds, hashes and compares a lookup
/// key of a dozen strings).
const SLOT_BITS: u32 = 12;
/// Slot bits of a table for agents and outcomes, which have a few hundred
/// values at most: 256 slots in 4 KiB.
const FEW_SLOT_BITS: u32 = 8;

/// One table: a key and the id it stood for, or `(0, 0)`.
pub(super) struct IdMemo {
    slots: Vec<(u64, u32)>,
    bits: u32,
}

impl IdMemo {
    /// A table for keys of many values.
    pub(super) fn new() -> Self {
        IdMemo {
            slots: Vec::new(),
            bits: SLOT_BITS,
        }
    }

    /// A table for keys of a few hundred values.
    pub(super) fn few() -> Self {
        IdMemo {
            slots: Vec::new(),
            bits: FEW_SLOT_BITS,
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

    /// Forgets every id: a new generation numbers its entries afresh.
    pub(super) fn clear(&mut self) {
        self.slots.fill((0, 0));
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
