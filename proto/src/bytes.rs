//! Byte strings as hash-table keys, for the lookups made on every record
//! (dictionary strings and endpoints here; agents, route names and path
//! templates in the capture core). In the Wasm filter two costs dominated
//! them:
//! - `Hash` for `str` and `[u8]` adds an end marker or a length prefix,
//!   which foldhash folds in through 128-bit shifts, and wasm32 runs each
//!   as a call. Hashing the bytes with one `write` needs neither: a key
//!   is one byte string, so nothing can run into the next.
//! - Slice equality calls `memcmp`, a loop over single bytes in
//!   wasi-libc. Comparing eight bytes at a time needs no call.
//!
//! Also the UTF-8 check of header values and paths ([`text`]): std's
//! checks wasm32's four-byte words only when aligned, so short text went a
//! byte at a time.

use core::hash::{BuildHasher, Hash, Hasher};

/// The hash of `bytes`, as every key here hashes.
#[inline]
pub fn hash(state: &impl BuildHasher, bytes: &[u8]) -> u64 {
    let mut h = state.build_hasher();
    h.write(bytes);
    h.finish()
}

/// Whether `a` and `b` hold the same bytes: natively the libc's vector
/// `memcmp`, which is faster still; on wasm32 a word at a time.
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    {
        a == b
    }
    #[cfg(target_arch = "wasm32")]
    {
        same_words(a, b)
    }
}

/// [`same`] eight bytes at a time.
#[inline]
pub fn same_words(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_tail) = a.as_chunks::<8>();
    let (b_words, b_tail) = b.as_chunks::<8>();
    a_words
        .iter()
        .zip(b_words)
        .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_tail.iter().zip(b_tail).all(|(x, y)| x == y)
}

/// `bytes` as text, as `std::str::from_utf8` would give it. ASCII (nearly
/// every host, path and address) is found eight bytes at a time first: the
/// standard check reads words only where they are aligned, and goes a byte
/// at a time over most of a short value (natively this saves capture 270
/// instructions a request on the reference mix).
#[inline]
#[allow(unsafe_code)]
pub fn text(bytes: &[u8]) -> Result<&str, core::str::Utf8Error> {
    if is_ascii_words(bytes) {
        // SAFETY: ASCII is UTF-8.
        return Ok(unsafe { core::str::from_utf8_unchecked(bytes) });
    }
    core::str::from_utf8(bytes)
}

/// Whether every byte is ASCII, eight at a time; past eight bytes the last
/// word overlaps the one before, so that no byte loop is needed. With Wasm
/// SIMD, from sixteen bytes on, sixteen at a time.
#[inline]
pub fn is_ascii_words(bytes: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if let Some(last) = bytes.last_chunk::<16>() {
        return is_ascii_lanes(bytes, last);
    }
    let (words, tail) = bytes.as_chunks::<8>();
    let mut seen = words
        .iter()
        .fold(0u64, |acc, w| acc | u64::from_ne_bytes(*w));
    if !tail.is_empty() {
        seen |= match bytes.last_chunk::<8>() {
            Some(last) => u64::from_ne_bytes(*last),
            None => tail.iter().fold(0u64, |acc, &b| acc | u64::from(b)),
        };
    }
    seen & HIGH == 0
}

/// [`is_ascii_words`] for sixteen bytes or more, `last` being the last
/// sixteen: the lanes' high bits gathered with one `or` a chunk, and read
/// once at the end. A host with a path of 50 bytes ran seven words and a
/// tail test; this is four loads.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline]
fn is_ascii_lanes(bytes: &[u8], last: &[u8; 16]) -> bool {
    use core::arch::wasm32::{u8x16_bitmask, v128, v128_load, v128_or};
    // SAFETY: each chunk is sixteen readable bytes, and `v128_load` reads
    // exactly those, at any alignment.
    #[allow(unsafe_code)]
    let load = |chunk: &[u8; 16]| unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
    let (chunks, _) = bytes.as_chunks::<16>();
    // The last chunk overlaps the whole ones, which is harmless for an or.
    let seen = chunks
        .iter()
        .fold(load(last), |seen, chunk| v128_or(seen, load(chunk)));
    u8x16_bitmask(seen) == 0
}

/// An owned key of a hashbrown map or set, hashed and compared as above;
/// looked up with a [`Query`] so that a lookup copies nothing. (Not
/// `Borrow<T>`: `T`'s own hash differs, so std's maps would miss.)
#[derive(Debug)]
pub struct Key<T: ?Sized>(pub Box<T>);

impl<T: ?Sized> Clone for Key<T>
where
    Box<T>: Clone,
{
    fn clone(&self) -> Self {
        Key(self.0.clone())
    }
}

impl<T: AsRef<[u8]> + ?Sized> Key<T> {
    /// Its bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl<T: AsRef<[u8]> + ?Sized> Hash for Key<T> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.bytes());
    }
}

impl<T: AsRef<[u8]> + ?Sized> PartialEq for Key<T> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        same(self.bytes(), other.bytes())
    }
}

impl<T: AsRef<[u8]> + ?Sized> Eq for Key<T> {}

/// The bytes to look a [`Key`] up by.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a>(pub &'a [u8]);

impl Hash for Query<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0);
    }
}

impl<T: AsRef<[u8]> + ?Sized> hashbrown::Equivalent<Key<T>> for Query<'_> {
    #[inline]
    fn equivalent(&self, key: &Key<T>) -> bool {
        same(self.0, key.bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foldhash::fast::FixedState;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn same_agrees_with_slice_equality() {
        let text: Vec<u8> = (0..40u8).collect();
        for same in [same, same_words] {
            for len in 0..text.len() {
                let a = &text[..len];
                // Equal bytes elsewhere in memory.
                let copy = a.to_vec();
                assert!(same(a, &copy));
                for at in 0..len {
                    let mut b = a.to_vec();
                    b[at] ^= 1;
                    assert!(!same(a, &b), "differs at {at} of {len}");
                }
                assert!(!same(a, &text[..len + 1]));
                assert!(!same(&text[1..len + 1], a) || len == 0);
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn text_agrees_with_std_at_every_length_and_position() {
        // ASCII with one byte changed at each position, to a high byte, a
        // valid two-byte character or half of one.
        // Past 48 bytes: three whole chunks of sixteen and every tail.
        for len in 0..70 {
            let ascii: Vec<u8> = (0..len as u8).map(|i| b'a' + i % 26).collect();
            assert!(is_ascii_words(&ascii));
            assert_eq!(text(&ascii), std::str::from_utf8(&ascii));
            for at in 0..len {
                for swap in [&[0x80][..], "é".as_bytes(), &[0xc3], &[0x7f]] {
                    let mut b = ascii.clone();
                    b.splice(at..at + 1, swap.iter().copied());
                    assert_eq!(is_ascii_words(&b), b.is_ascii(), "{b:?}");
                    assert_eq!(text(&b), std::str::from_utf8(&b), "{b:?}");
                }
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keys_and_queries_hash_alike_and_find_each_other() {
        let state = FixedState::with_seed(7);
        let mut set: hashbrown::HashSet<Key<str>, FixedState> =
            hashbrown::HashSet::with_hasher(state.clone());
        for s in ["", "a", "/users/{id}", "a longer template, past two words"] {
            let key = Key(Box::<str>::from(s));
            assert_eq!(state.hash_one(&key), hash(&state, s.as_bytes()));
            assert_eq!(
                state.hash_one(Query(s.as_bytes())),
                hash(&state, s.as_bytes())
            );
            set.insert(key);
        }
        assert!(set.contains(&Query(b"/users/{id}")));
        assert!(!set.contains(&Query(b"/users/{id")));
        let got = set.get_or_insert_with(&Query(b"new"), |q| {
            Key(Box::from(std::str::from_utf8(q.0).unwrap_or_default()))
        });
        assert_eq!(&*got.0, "new");
        assert_eq!(set.len(), 5);
    }
}
