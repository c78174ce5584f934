//! Decoding of the proxy-wasm header map: a little-endian pair count, then
//! each pair's name and value lengths, then the bytes, each string followed
//! by a NUL. Any inconsistency ends the decoding; nothing is trusted.
//! Also the lowercasing of header names for matching.

use std::ops::Range;

/// Most pairs read.
pub const MAX_PAIRS: usize = 256;

/// The (name, value) pairs of a serialized header map.
pub fn pairs(map: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    spans(map).map_while(|(name, value)| Some((map.get(name)?, map.get(value)?)))
}

/// The pairs as byte ranges of `map`, so a caller can keep the map and
/// refer into it without copying each value.
pub fn spans(map: &[u8]) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
    let count = read_u32(map, 0).unwrap_or(0).min(MAX_PAIRS);
    // The lengths as 8-byte chunks, each a name's and a value's: read
    // without a check per length (one per header, in Wasm, is most of
    // the header scan). A map shorter than its count yields none.
    let lengths = map
        .get(4..)
        .and_then(|rest| rest.as_chunks::<8>().0.get(..count))
        .unwrap_or_default();
    let mut data = count.wrapping_mul(8).wrapping_add(4);
    lengths.iter().map_while(move |pair| {
        let [n0, n1, n2, n3, v0, v1, v2, v3] = *pair;
        let name_len = usize::try_from(u32::from_le_bytes([n0, n1, n2, n3])).ok()?;
        let value_len = usize::try_from(u32::from_le_bytes([v0, v1, v2, v3])).ok()?;
        let name_end = data.checked_add(name_len)?;
        let value_at = name_end.checked_add(1)?;
        let value_end = value_at.checked_add(value_len)?;
        if value_end > map.len() {
            return None;
        }
        let name = data..name_end;
        data = value_end.checked_add(1)?;
        Some((name, value_at..value_end))
    })
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

/// Serializes pairs the way the host does (a native host builds its map
/// with this; tests and benches too).
pub fn serialize<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Vec<u8> {
    let mut out = Vec::new();
    serialize_into(pairs, &mut out);
    out
}

/// [`serialize`] into `out`, replacing what it held, in one allocation at
/// most (none when `out` is large enough already).
pub fn serialize_into<'a>(
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])> + Clone,
    out: &mut Vec<u8>,
) {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let (count, bytes) = pairs
        .clone()
        .into_iter()
        .fold((0usize, 0usize), |(c, b), (n, v)| {
            (
                c.saturating_add(1),
                b.saturating_add(n.len())
                    .saturating_add(v.len())
                    .saturating_add(2),
            )
        });
    out.clear();
    out.reserve(
        count
            .saturating_mul(8)
            .saturating_add(4)
            .saturating_add(bytes),
    );
    out.extend_from_slice(&len(count));
    for (name, value) in pairs.clone() {
        out.extend_from_slice(&len(name.len()));
        out.extend_from_slice(&len(value.len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
}

/// A header name of up to [`ShortName::MAX`] bytes, lowercased, as three
/// little-endian words with zeros past its end. Names are matched on every
/// header of every request; as words they compare as numbers. Copying each
/// name to lowercase it and comparing it with `memcmp` cost a call into
/// the engine per copy in Wasm (`memory.copy` is a Wasmtime builtin) and a
/// byte loop per compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortName {
    len: usize,
    words: [u64; 3],
}

impl ShortName {
    /// Longest name held.
    pub const MAX: usize = 24;

    /// `name` lowercased; `None` when longer than [`ShortName::MAX`].
    #[inline]
    pub fn of(name: &[u8]) -> Option<ShortName> {
        Self::at(name, 0..name.len())
    }

    /// The name at `range` of `buf`, lowercased; `None` when longer than
    /// [`ShortName::MAX`] or out of bounds. Whole words are read past the
    /// name's end where `buf` allows (in a header map its value follows)
    /// and masked to its bytes, so that short names need no byte loop.
    #[inline]
    pub fn at(buf: &[u8], range: Range<usize>) -> Option<ShortName> {
        let len = range.end.checked_sub(range.start)?;
        if len > Self::MAX || range.end > buf.len() {
            return None;
        }
        let mut words = [0u64; 3];
        let mut tail = buf.get(range.start..)?;
        let mut rest = buf.get(range)?;
        for word in &mut words {
            if rest.is_empty() {
                break;
            }
            let take = rest.len().min(8);
            let raw = match tail.first_chunk::<8>() {
                Some(chunk) => u64::from_le_bytes(*chunk) & low_bytes(take),
                None => rest
                    .iter()
                    .take(take)
                    .rev()
                    .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
            };
            *word = lowercase_word(raw);
            rest = rest.get(take..).unwrap_or_default();
            tail = tail.get(take..).unwrap_or_default();
        }
        Some(ShortName { len, words })
    }

    /// A name known when compiling, already in lowercase.
    pub const fn constant(name: &str) -> ShortName {
        let bytes = name.as_bytes();
        assert!(bytes.len() <= Self::MAX, "name too long");
        let mut words = [0u64; 3];
        let mut i = 0;
        while i < bytes.len() {
            // Evaluated at compile time: a bad index fails the build.
            #[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
            {
                assert!(!bytes[i].is_ascii_uppercase(), "name not in lowercase");
                words[i / 8] |= (bytes[i] as u64) << (8 * (i % 8));
            }
            #[allow(clippy::arithmetic_side_effects)]
            {
                i += 1;
            }
        }
        ShortName {
            len: bytes.len(),
            words,
        }
    }

    /// Its slot in a [`NameTable`].
    const fn slot(&self) -> usize {
        let mixed = self.words[0]
            ^ self.words[1].rotate_left(17)
            ^ self.words[2].rotate_left(31)
            ^ self.len as u64;
        (mixed.wrapping_mul(0xc4ce_b9fe_1a85_ec53) >> (64 - NameTable::<()>::BITS)) as usize
    }
}

/// Names known when compiling and what each stands for, found with one
/// hash and one compare: a perfect hash, checked when compiling (names
/// that share a slot fail the build).
#[derive(Debug)]
pub struct NameTable<T: Copy + 'static> {
    slots: [Option<(ShortName, T)>; 1 << NameTable::<()>::BITS],
    /// Bit n is set when a name is n bytes long: most other names are
    /// turned away on their length alone.
    lengths: u32,
}

impl<T: Copy + 'static> NameTable<T> {
    const BITS: u32 = 6;

    /// The table of `entries`, whose names must not share a slot.
    pub const fn new(entries: &[(&str, T)]) -> Self {
        let mut slots = [None; 1 << NameTable::<()>::BITS];
        let mut lengths = 0u32;
        let mut i = 0;
        while i < entries.len() {
            // Evaluated at compile time, as in `ShortName::constant`.
            #[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
            {
                let name = ShortName::constant(entries[i].0);
                let slot = name.slot();
                assert!(
                    slots[slot].is_none(),
                    "two names share a slot: pick another multiplier"
                );
                slots[slot] = Some((name, entries[i].1));
                lengths |= 1 << name.len;
                i += 1;
            }
        }
        NameTable { slots, lengths }
    }

    /// What `name` stands for.
    #[inline]
    pub fn find(&self, name: &ShortName) -> Option<T> {
        match self.slots.get(name.slot()) {
            Some(Some((known, value))) if known == name => Some(*value),
            _ => None,
        }
    }

    /// What the name at `range` of `buf` (of any case) stands for.
    #[inline]
    pub fn find_at(&self, buf: &[u8], range: Range<usize>) -> Option<T> {
        let len = range.end.checked_sub(range.start)?;
        if len > ShortName::MAX || self.lengths & (1 << len) == 0 {
            return None;
        }
        self.find(&ShortName::at(buf, range)?)
    }

    /// What `name` (of any case) stands for.
    pub fn get(&self, name: &[u8]) -> Option<T> {
        self.find_at(name, 0..name.len())
    }
}

/// A mask of the low `n` bytes of a word, `n` from 1 to 8.
fn low_bytes(n: usize) -> u64 {
    u64::MAX >> 8usize.saturating_sub(n).min(7).saturating_mul(8)
}

/// A word with `A`..=`Z` lowered in each byte. Added to a byte's low seven
/// bits, 0x3f sets its top bit from `A` up and 0x25 past `Z`; no sum
/// carries into the next byte, and bytes with the top bit set stay.
const fn lowercase_word(x: u64) -> u64 {
    let low = x & 0x7f7f_7f7f_7f7f_7f7f;
    let upper = low.wrapping_add(0x3f3f_3f3f_3f3f_3f3f)
        & !low.wrapping_add(0x2525_2525_2525_2525)
        & !x
        & 0x8080_8080_8080_8080;
    x | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn short_names_match_std_lowercasing_for_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        for start in 0..all.len() {
            for len in 0..=ShortName::MAX {
                let Some(slice) = all.get(start..start + len) else {
                    continue;
                };
                let lower = slice.to_ascii_lowercase();
                let of = ShortName::of(slice).expect("short");
                assert_eq!(of, ShortName::of(&lower).expect("short"), "{slice:?}");
                if let Ok(text) = std::str::from_utf8(&lower) {
                    assert_eq!(of, ShortName::constant(text), "{slice:?}");
                }
                // One byte more or less, or changed, is another name.
                assert_ne!(
                    Some(of),
                    ShortName::of(&lower[..len.saturating_sub(1)]).filter(|_| len > 0)
                );
                let mut other = lower.clone();
                other.push(b'a');
                assert_ne!(Some(of), ShortName::of(&other));
            }
        }
        assert_eq!(ShortName::of(&[b'a'; 25]), None);
        // Read in place, with bytes after it, it is the same name.
        let map = b"..X-Consumer-ID\0value that follows";
        assert_eq!(
            ShortName::at(map, 2..15),
            Some(ShortName::constant("x-consumer-id"))
        );
        assert_eq!(ShortName::at(map, 2..6), Some(ShortName::constant("x-co")));
        assert_eq!(ShortName::at(map, 2..200), None);
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 6..2;
        assert_eq!(ShortName::at(map, backwards), None);
        assert_eq!(
            ShortName::of(b"X-Consumer-ID"),
            Some(ShortName::constant("x-consumer-id"))
        );
        assert_ne!(
            ShortName::of(b"x-consumer-id\0"),
            Some(ShortName::constant("x-consumer-id")),
            "a trailing NUL is part of the name"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn name_tables_find_their_names_in_any_case_and_nothing_else() {
        const TABLE: NameTable<u8> =
            NameTable::new(&[("host", 1), ("user-agent", 2), (":path", 3)]);
        assert_eq!(TABLE.get(b"Host"), Some(1));
        assert_eq!(TABLE.get(b"USER-AGENT"), Some(2));
        assert_eq!(TABLE.get(b":path"), Some(3));
        for other in [
            &b"hos"[..],
            b"hostx",
            b"",
            b":Path ",
            b"user_agent",
            &[b'h'; 40],
        ] {
            assert_eq!(TABLE.get(other), None, "{other:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn round_trip() {
        let input: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"GET"),
            (b"x-bytes", b"\xff\xfe"),
            (b"\xc3\x28", b"bad name"),
            (b"empty", b""),
        ];
        let map = serialize(input.clone());
        assert_eq!(pairs(&map).collect::<Vec<_>>(), input);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn truncated_and_lying_maps_end_early() {
        let map = serialize(vec![(&b"a"[..], &b"1"[..]), (&b"b"[..], &b"2"[..])]);
        for cut in 0..map.len() {
            assert!(pairs(&map[..cut]).count() <= 2);
        }
        let mut lying = map.clone();
        lying[0] = 0xff;
        lying[1] = 0xff;
        assert!(pairs(&lying).count() <= 2);
        assert_eq!(pairs(&[]).count(), 0);
    }
}
