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
    let mut data = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .unwrap_or(usize::MAX);
    (0..count).map_while(move |i| {
        let at = i.checked_mul(8)?.checked_add(4)?;
        let name_len = read_u32(map, at)?;
        let value_len = read_u32(map, at.checked_add(4)?)?;
        let name = data..data.checked_add(name_len)?;
        let value_at = name.end.checked_add(1)?;
        let value = value_at..value_at.checked_add(value_len)?;
        if value.end > map.len() {
            return None;
        }
        data = value.end.checked_add(1)?;
        Some((name, value))
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

/// Lowercases the ASCII letters of the first `len` bytes of `buf`, whole
/// eight-byte words at a time, so bytes up to the next multiple of eight
/// change too. Header names are lowercased to be matched on every request,
/// and a loop over single bytes cost more than all the matching after it.
pub fn lowercase_words(buf: &mut [u8], len: usize) {
    let (words, _) = buf.as_chunks_mut::<8>();
    for word in words.iter_mut().take(len.div_ceil(8)) {
        *word = lowercase_word(u64::from_le_bytes(*word)).to_le_bytes();
    }
}

/// A word with `A`..=`Z` lowered in each byte. Added to a byte's low seven
/// bits, 0x3f sets its top bit from `A` up and 0x25 past `Z`; no sum
/// carries into the next byte, and bytes with the top bit set stay.
fn lowercase_word(x: u64) -> u64 {
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
    fn lowercasing_words_matches_std_for_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        for start in 0..all.len() {
            for len in 0..20 {
                let Some(slice) = all.get(start..start + len) else {
                    continue;
                };
                let mut buf = [0u8; 24];
                buf[..len].copy_from_slice(slice);
                lowercase_words(&mut buf, len);
                assert_eq!(&buf[..len], slice.to_ascii_lowercase(), "bytes {slice:?}");
            }
        }
        // A length past the buffer's whole words lowers what there is.
        let mut name = *b"X-Consumer-ID";
        lowercase_words(&mut name, 13);
        assert_eq!(&name, b"x-consumer-ID");
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
