//! Which client addresses earn a dictionary entry at once, and which travel
//! inline (4 or 16 bytes in their record) until they are met again.
//!
//! Inlining first pays only when most addresses are not met again: one
//! that comes back costs its inline bytes and then its definition anyway.
//! At production cardinality most addresses are met once or twice an hour,
//! and a definition (text, key and length, plus an id in every record)
//! costs more than the bytes; at low cardinality nearly all come back
//! within seconds. So the table measures it. Addresses are defined at once
//! (as before inline addresses existed), except the one in [`PROBE`] whose
//! hash picks it: a probe travels inline and is remembered here. A probe
//! met again is defined and counts as come back. Two epochs after it was
//! remembered, a probe is settled, back or not. Once enough are settled
//! and fewer than [`COME_BACK`] eighths of them came back, every new
//! address is remembered and travels inline until it is met again; the
//! count goes on, so the mode follows the traffic.
//!
//! The table is direct-mapped and fixed in size, so its memory is bounded
//! whatever the traffic. A slot keeps its fingerprint until it is claimed
//! or goes stale (two epochs of new addresses later); until then another
//! address that lands there is sent inline without being remembered.
//! Replacing at once instead would let two addresses that share a slot
//! evict each other forever, and neither would ever be defined. A
//! collision never changes what a record says, only whether an address is
//! inline once more.

/// Slots in the table: 16,384 words of 4 bytes, 64 KiB, allocated on the
/// first address that could travel inline.
const SLOTS: usize = 1 << 14;

/// Records per epoch. A fingerprint goes stale two epochs after it was
/// written, so an address counts as come back when it is met again within
/// 16,384 to 32,768 records, about half a minute at 1,000 requests/s. The
/// clock is records, not new addresses, so that it runs at the same speed
/// whichever way addresses are being sent.
const EPOCH: u32 = 1 << 14;

/// Share of settled addresses, in eighths, that must come back for new
/// ones to be defined at once: an IPv4 address's definition costs about
/// four times its inline bytes, an IPv6 one about twice.
const COME_BACK: u32 = 5;

/// While addresses are defined at once, one in this many goes through the
/// table, to keep measuring how many come back.
const PROBE: u64 = 64;

/// Settled addresses needed before the count decides anything.
const EVIDENCE: u32 = 64;

/// The counts are halved past this many settled addresses, so they follow
/// the traffic.
const WINDOW: u32 = 4096;

pub(super) struct Admission {
    /// Each word: a 24-bit fingerprint (never 0) over the 8-bit epoch it
    /// was written in; 0 is an empty slot.
    slots: Box<[u32]>,
    epoch: u8,
    /// Records in this epoch.
    records: u32,
    /// Addresses remembered in this epoch and the one before, by epoch
    /// parity: not settled yet.
    unsettled: [u32; 2],
    /// Addresses remembered two or more epochs ago: met again since, or
    /// stale by now.
    settled: u32,
    /// Remembered addresses met again.
    came_back: u32,
    /// Every new address is remembered, whatever the count says.
    always: bool,
}

impl Admission {
    pub(super) fn new(always: bool) -> Self {
        Admission {
            always,
            slots: Box::default(),
            epoch: 0,
            records: 0,
            unsettled: [0; 2],
            settled: 0,
            came_back: 0,
        }
    }

    /// Counts a record: the table's clock.
    pub(super) fn record(&mut self) {
        self.records = self.records.saturating_add(1);
        if self.records == EPOCH {
            self.records = 0;
            self.epoch = self.epoch.wrapping_add(1);
            // What was remembered two epochs ago has had its chance.
            if let Some(old) = self.unsettled.get_mut(usize::from(self.epoch & 1)) {
                self.settled = self.settled.saturating_add(std::mem::take(old));
            }
            if self.settled >= WINDOW {
                self.settled /= 2;
                self.came_back /= 2;
            }
        }
    }

    /// For an address not in the dictionary: true to define it now, false
    /// to send it inline.
    pub(super) fn define(&mut self, hash: u64) -> bool {
        if self.slots.is_empty() {
            self.slots = vec![0; SLOTS].into_boxed_slice();
        }
        // Low bits pick the slot, high bits tell addresses apart in it.
        let slot = (hash as usize) & (SLOTS - 1);
        let fingerprint = ((hash >> 40) as u32) | 1;
        let Some(word) = self.slots.get_mut(slot) else {
            return true;
        };
        if *word != 0 && *word >> 8 == fingerprint {
            *word = 0;
            self.came_back = self.came_back.saturating_add(1);
            return true;
        }
        // Those met again early count before their epoch settles, which
        // leans towards defining while the evidence is young.
        let few_come_back = self.always
            || self.settled >= EVIDENCE
                && u64::from(self.came_back).saturating_mul(8)
                    < u64::from(self.settled).saturating_mul(u64::from(COME_BACK));
        if !few_come_back && !(hash >> 32).is_multiple_of(PROBE) {
            return true;
        }
        let stale = self.epoch.wrapping_sub(*word as u8) >= 2;
        if *word == 0 || stale {
            *word = (fingerprint << 8) | u32::from(self.epoch);
            if let Some(count) = self.unsettled.get_mut(usize::from(self.epoch & 1)) {
                *count = count.saturating_add(1);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// A hash in slot `slot` that the table takes as a probe, with a
    /// fingerprint of its own per `tag`.
    fn probe(slot: u64, tag: u64) -> u64 {
        ((tag * PROBE) << 40) | slot
    }

    /// A hash that is no probe, with a fingerprint of its own per `i`.
    fn other(i: u64) -> u64 {
        ((i * PROBE * 256 + 1) << 32) | (i % SLOTS as u64)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_probe_travels_inline_until_met_again_and_a_held_slot_is_not_taken_over() {
        let mut a = Admission::new(false);
        assert!(!Admission::new(true).define(other(3)), "always: inline");
        let (x, y) = (probe(7, 1), probe(7, 2));
        assert!(!a.define(x), "first meeting: inline");
        assert!(a.define(x), "second: define");
        assert!(!a.define(x), "the definition freed the slot");
        assert!(!a.define(y), "same slot, held by x: inline, not kept");
        assert!(!a.define(y), "still held by x");
        assert!(a.define(x), "x was not pushed out");
        assert!(!a.define(y), "free again: y is remembered");
        assert!(a.define(y));
        assert_eq!(a.slots.len(), SLOTS);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn addresses_are_defined_at_once_until_probes_show_few_come_back() {
        let mut a = Admission::new(false);
        assert!(a.define(other(1)), "not a probe, no evidence: defined");
        // Probes that never come back settle two epochs later.
        for i in 0..u64::from(EVIDENCE) {
            assert!(!a.define(probe(i, i + 1)), "a probe travels inline");
        }
        for _ in 0..EPOCH {
            a.record();
        }
        assert!(a.define(other(2)), "not settled yet: defined");
        for _ in 0..EPOCH {
            a.record();
        }
        assert_eq!(a.settled, EVIDENCE);
        assert!(!a.define(other(5)), "few come back: everything inline");
        assert_eq!(a.came_back, 0);
        for _ in 0..(2 * EPOCH) {
            a.record();
        }
        assert_eq!(a.settled, EVIDENCE + 1, "other(5) was remembered");
        assert!(!a.define(probe(0, 9999)), "a stale slot takes a new one");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn when_most_come_back_addresses_are_defined_at_once_again() {
        let mut a = Admission::new(false);
        a.settled = 2 * EVIDENCE;
        assert!(!a.define(other(1)), "few come back: inline");
        let mut i = 2;
        while !a.define(other(i)) {
            assert!(a.define(other(i)), "met again: defined");
            i += 1;
        }
        // 80 of 128 back: five eighths.
        assert_eq!((a.came_back, i), (80, 82));
        assert!(a.define(other(100_000)), "most come back: defined at once");
    }
}
