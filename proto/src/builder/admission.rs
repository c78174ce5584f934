//! Which client addresses earn a dictionary entry. An address met for the
//! first time travels inline, as 4 or 16 bytes in its record; one met again
//! while its fingerprint is still here is defined, and costs an id from
//! then on. At production cardinality most addresses are met once or twice
//! an hour, and a definition (text, key and length, plus the id) costs more
//! than the bytes; popular addresses are met again within seconds.
//!
//! The table is direct-mapped and fixed in size, so its memory is bounded
//! whatever the traffic. A slot keeps its fingerprint until it is claimed
//! (the address is met again) or goes stale (two epochs of new
//! addresses later); until then another address that lands there is
//! sent inline without being remembered. Replacing at once instead would
//! let two addresses that share a slot evict each other forever, and
//! neither would ever be defined. A collision never changes what a record
//! says, only whether an address is inline once more.
//!
//! Inlining first pays only when most addresses are not met again: one
//! that comes back costs its inline bytes and then its definition anyway.
//! So the table keeps count of how many remembered addresses came back.
//! Past [`COME_BACK`] of them, new addresses are defined at once, all but
//! the one in [`PROBE`] whose hash picks it, which keeps the count honest.

/// Slots in the table: 16,384 words of 4 bytes, 64 KiB, allocated on the
/// first address that could travel inline.
const SLOTS: usize = 1 << 14;

/// New addresses met per epoch.
const EPOCH: u32 = (SLOTS / 2) as u32;

/// Share of remembered addresses that must come back before new ones are
/// defined at once, as a fraction of 8: an IPv4 address's definition
/// costs about four times its inline bytes, an IPv6 one about twice.
const COME_BACK: u32 = 5;

/// While addresses are defined at once, one in this many still goes
/// through the table, to keep measuring how many come back.
const PROBE: u64 = 32;

/// The counts are halved past this many remembered addresses, so they
/// follow the traffic.
const WINDOW: u32 = 4096;

pub(super) struct Admission {
    /// Each word: a 24-bit fingerprint (never 0) over the 8-bit epoch it
    /// was written in; 0 is an empty slot.
    slots: Box<[u32]>,
    epoch: u8,
    /// New addresses met in this epoch.
    met: u32,
    /// Addresses remembered, and those of them met again, lately.
    remembered: u32,
    came_back: u32,
}

impl Admission {
    pub(super) fn new() -> Self {
        Admission {
            slots: Box::default(),
            epoch: 0,
            met: 0,
            remembered: 0,
            came_back: 0,
        }
    }

    /// True when an address with this hash was met before and not yet
    /// defined: define it now. Otherwise it is to travel inline.
    pub(super) fn met_again(&mut self, hash: u64) -> bool {
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
        let most_come_back = self.remembered >= 64
            && u64::from(self.came_back) * 8 > u64::from(self.remembered) * u64::from(COME_BACK);
        if most_come_back && !(hash >> 32).is_multiple_of(PROBE) {
            return true;
        }
        let stale = self.epoch.wrapping_sub(*word as u8) >= 2;
        if *word == 0 || stale {
            *word = (fingerprint << 8) | u32::from(self.epoch);
            self.remembered += 1;
            if self.remembered == WINDOW {
                self.remembered /= 2;
                self.came_back /= 2;
            }
        }
        // Epochs pass with the addresses met, not with those written: a
        // table full of fresh fingerprints must still age.
        self.met += 1;
        if self.met == EPOCH {
            self.met = 0;
            self.epoch = self.epoch.wrapping_add(1);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn the_second_meeting_defines_and_a_held_slot_is_not_taken_over() {
        let mut a = Admission::new();
        let (x, y) = (0xdead_beef_0000_0007, 0x1234_5678_0000_0007);
        assert!(!a.met_again(x), "first meeting: inline");
        assert!(a.met_again(x), "second: define");
        assert!(!a.met_again(x), "the definition freed the slot");
        assert!(!a.met_again(y), "same slot, held by x: inline, not kept");
        assert!(!a.met_again(y), "still held by x");
        assert!(a.met_again(x), "x was not pushed out");
        assert!(!a.met_again(y), "free again: y is remembered");
        assert!(a.met_again(y));
        assert_eq!(a.slots.len(), SLOTS);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_fingerprint_nobody_claims_goes_stale_and_gives_way() {
        let mut a = Admission::new();
        let (x, y) = (0xdead_beef_0000_0007, 0x1234_5678_0000_0007);
        assert!(!a.met_again(x));
        // Two epochs of other addresses, none in x's slot.
        for i in 0..2 * u64::from(EPOCH) {
            let other = (i << 40) | ((i % (SLOTS as u64 - 8)) + 8);
            a.met_again(other);
        }
        assert!(
            !a.met_again(y),
            "x's fingerprint is stale: y takes the slot"
        );
        assert!(a.met_again(y));
        assert!(!a.met_again(x), "x was forgotten");
    }
}
