//! What the filter keeps of the client address and of identity values, per
//! configuration: the address as it is, truncated to its /24 (IPv4) or /48
//! (IPv6) network, or replaced by a keyed hash; identity fields either kept
//! or pseudonymised with the same keyed hash. The hash is HMAC-SHA256 with a
//! key from the configuration, truncated to 96 bits: stable for joins in
//! Looker, useless without the key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, KeyInit, Mac};
use kong_looker_proto::address::{self, AddressText};
use sha2::Sha256;

/// Longest address text the transform reads.
pub const MAX_ADDRESS_BYTES: usize = 64;

pub use crate::config::AddressMode;

/// A keyed pseudonymiser.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl core::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the key.
        f.write_str("Pseudonymiser(..)")
    }
}

impl Pseudonymiser {
    /// A pseudonymiser with `key`; `None` for an empty key.
    pub fn new(key: &[u8]) -> Option<Self> {
        if key.is_empty() {
            return None;
        }
        Hmac::<Sha256>::new_from_slice(key)
            .ok()
            .map(|mac| Pseudonymiser { mac })
    }

    /// `h:` and 24 hex digits: the first 96 bits of HMAC-SHA256(key, value).
    pub fn hash(&self, value: &str) -> String {
        let mut out = String::with_capacity(26);
        self.hash_into(value, &mut out);
        out
    }

    /// [`Pseudonymiser::hash`] appended to `out`.
    pub fn hash_into(&self, value: &str, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        out.push_str("h:");
        for byte in digest.iter().take(12) {
            for nibble in [byte >> 4, byte & 0xf] {
                if let Some(&digit) = HEX.get(usize::from(nibble)) {
                    out.push(char::from(digit));
                }
            }
        }
    }
}

/// The recorded form of a client address; `None` when it is not an IP
/// address (nothing that is not an address is ever recorded there).
pub fn client_address<T: AsRef<[u8]> + ?Sized>(
    addr: &T,
    mode: &AddressMode,
    hasher: Option<&Pseudonymiser>,
) -> Option<String> {
    let mut out = String::new();
    client_address_into(addr, mode, hasher, &mut out).then_some(out)
}

/// [`client_address`] into `out`, replacing what it held (so that a
/// capturer reuses one buffer); false, and `out` empty, when there is none.
pub fn client_address_into<T: AsRef<[u8]> + ?Sized>(
    addr: &T,
    mode: &AddressMode,
    hasher: Option<&Pseudonymiser>,
    out: &mut String,
) -> bool {
    match recorded_address(addr.as_ref(), mode, hasher, out) {
        Recorded::AsGiven(text) => {
            out.push_str(text);
            true
        }
        Recorded::Written => true,
        Recorded::Nothing => false,
    }
}

/// How a client address is recorded, by [`recorded_address`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded<'a> {
    /// As the host gave it: kept, and already in its canonical form (most
    /// requests': an IPv4 address under the default setting).
    AsGiven(&'a str),
    /// Written into the buffer.
    Written,
    /// Not an IP address: nothing is recorded.
    Nothing,
}

/// [`client_address`], borrowing the host's text when that is what is
/// recorded, else writing into `out` (emptied first). Read as bytes: an
/// IPv4 address needs no UTF-8 check, and when kept, no copy.
pub fn recorded_address<'a>(
    addr: &'a [u8],
    mode: &AddressMode,
    hasher: Option<&Pseudonymiser>,
    out: &mut String,
) -> Recorded<'a> {
    recorded_address_unless_known(addr, mode, hasher, out, |_| false)
}

/// [`recorded_address`], where `known` says of a text to be kept as given
/// that it was kept before: it was checked then, and is not parsed again
/// (most requests' address, at some 400 Wasm instructions a parse).
pub fn recorded_address_unless_known<'a>(
    addr: &'a [u8],
    mode: &AddressMode,
    hasher: Option<&Pseudonymiser>,
    out: &mut String,
    known: impl FnOnce(&[u8]) -> bool,
) -> Recorded<'a> {
    out.clear();
    let text = addr.trim_ascii();
    if text.len() > MAX_ADDRESS_BYTES {
        return Recorded::Nothing;
    }
    if *mode == AddressMode::Keep
        && known(text)
        && let Ok(text) = kong_looker_proto::bytes::text(text)
    {
        return Recorded::AsGiven(text);
    }
    // Both byte parsers take only the canonical form (IPv4 without leading
    // zeros, IPv6 as RFC 5952 writes it), so such a text is what printing
    // would write; any other form of an address is printed afresh.
    let (ip, canonical) = match address::parse_v4(text) {
        Some(v4) => (IpAddr::V4(v4), true),
        None => match address::parse_v6_canonical(text) {
            Some(v6) => (IpAddr::V6(v6), true),
            None => match std::str::from_utf8(text).map(str::parse::<IpAddr>) {
                Ok(Ok(ip)) => (ip, false),
                _ => return Recorded::Nothing,
            },
        },
    };
    let mut shown = AddressText::default();
    match mode {
        AddressMode::Keep if canonical => match kong_looker_proto::bytes::text(text) {
            Ok(text) => return Recorded::AsGiven(text),
            Err(_) => out.push_str(shown.show(ip)),
        },
        AddressMode::Keep => out.push_str(shown.show(ip)),
        AddressMode::Truncate => {
            let network = match ip {
                IpAddr::V4(v4) => {
                    let [a, b, c, _] = v4.octets();
                    IpAddr::V4(Ipv4Addr::new(a, b, c, 0))
                }
                IpAddr::V6(v6) => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
                }
            };
            out.push_str(shown.show(network));
            out.push_str(if ip.is_ipv4() { "/24" } else { "/48" });
        }
        AddressMode::Hash => {
            let Some(hasher) = hasher else {
                return Recorded::Nothing;
            };
            hasher.hash_into(shown.show(ip), out);
        }
    }
    Recorded::Written
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn a_text_kept_before_is_kept_unparsed_and_only_where_texts_are_kept() {
        let h = Pseudonymiser::new(b"secret-key").unwrap();
        let mut out = String::from("stale");
        // Asked with the trimmed text; a known one is not parsed (the
        // parser would refuse this one).
        let mut asked = Vec::new();
        let recorded = recorded_address_unless_known(
            b" 10.0.0.01 ",
            &AddressMode::Keep,
            None,
            &mut out,
            |t| {
                asked.push(t.to_vec());
                true
            },
        );
        assert_eq!(recorded, Recorded::AsGiven("10.0.0.01"));
        assert_eq!((asked, out.as_str()), (vec![b"10.0.0.01".to_vec()], ""));
        // Unknown, it is parsed as ever.
        let recorded =
            recorded_address_unless_known(b"10.0.0.01", &AddressMode::Keep, None, &mut out, |_| {
                false
            });
        assert_eq!(recorded, Recorded::Nothing);
        // Where the record holds another text, nothing is asked.
        for mode in [AddressMode::Truncate, AddressMode::Hash] {
            let recorded =
                recorded_address_unless_known(b"203.0.113.77", &mode, Some(&h), &mut out, |_| {
                    panic!("asked")
                });
            assert_eq!(recorded, Recorded::Written);
            assert_ne!(out, "203.0.113.77");
        }
        // Nor of a text too long to be an address.
        let long = [b'1'; MAX_ADDRESS_BYTES + 1];
        let recorded =
            recorded_address_unless_known(&long, &AddressMode::Keep, None, &mut out, |_| {
                panic!("asked")
            });
        assert_eq!(recorded, Recorded::Nothing);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_kept_ipv4_address_is_borrowed_and_the_rest_written() {
        let h = Pseudonymiser::new(b"secret-key").unwrap();
        let mut out = String::from("stale");
        let given = b" 203.0.113.77 ";
        let recorded = recorded_address(given, &AddressMode::Keep, None, &mut out);
        assert_eq!(recorded, Recorded::AsGiven("203.0.113.77"));
        assert_eq!(out, "", "emptied");
        let recorded = recorded_address(b"2001:db8::1", &AddressMode::Keep, None, &mut out);
        assert_eq!(recorded, Recorded::AsGiven("2001:db8::1"));
        let recorded = recorded_address(b"::ffff:1.2.3.4", &AddressMode::Keep, None, &mut out);
        assert_eq!(
            (recorded, out.as_str()),
            (Recorded::Written, "::ffff:1.2.3.4")
        );
        for (addr, mode, shown) in [
            ("2001:DB8::0:1", AddressMode::Keep, "2001:db8::1"),
            ("203.0.113.77", AddressMode::Truncate, "203.0.113.0/24"),
        ] {
            let recorded = recorded_address(addr.as_bytes(), &mode, Some(&h), &mut out);
            assert_eq!((recorded, out.as_str()), (Recorded::Written, shown));
        }
        let recorded = recorded_address(b"203.0.113.77", &AddressMode::Hash, Some(&h), &mut out);
        assert_eq!(recorded, Recorded::Written);
        assert!(out.starts_with("h:"));
        for junk in [&b"010.0.0.1"[..], b"nope", b"", &[0xff, b'1']] {
            let recorded = recorded_address(junk, &AddressMode::Keep, None, &mut out);
            assert_eq!(
                (recorded, out.as_str()),
                (Recorded::Nothing, ""),
                "{junk:?}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn keep_truncate_and_hash() {
        let h = Pseudonymiser::new(b"secret-key").unwrap();
        let keep = |a| client_address(a, &AddressMode::Keep, None);
        let cut = |a| client_address(a, &AddressMode::Truncate, None);
        assert_eq!(keep("203.0.113.77").as_deref(), Some("203.0.113.77"));
        assert_eq!(keep(" 10.0.0.1 ").as_deref(), Some("10.0.0.1"));
        // Forms other than the canonical one are refused, not copied.
        assert_eq!(keep("010.0.0.1"), None);
        assert_eq!(keep("10.0.0.1.5"), None);
        assert_eq!(keep("2001:DB8::0:1").as_deref(), Some("2001:db8::1"));
        assert_eq!(cut("203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            cut("2001:db8:abcd:12::1").as_deref(),
            Some("2001:db8:abcd::/48")
        );
        let hashed = client_address("203.0.113.77", &AddressMode::Hash, Some(&h)).unwrap();
        assert_eq!(hashed.len(), 26);
        assert!(hashed.starts_with("h:") && !hashed.contains("203"));
        assert_eq!(
            Some(hashed.clone()),
            client_address(" 203.0.113.77 ", &AddressMode::Hash, Some(&h)),
            "stable"
        );
        let other = Pseudonymiser::new(b"another-key").unwrap();
        assert_ne!(
            Some(hashed),
            client_address("203.0.113.77", &AddressMode::Hash, Some(&other)),
            "keyed"
        );
        assert_eq!(
            client_address("203.0.113.77", &AddressMode::Hash, None),
            None
        );
        assert_eq!(keep("not-an-ip"), None);
        assert_eq!(keep(&"1".repeat(100)), None);
        assert!(Pseudonymiser::new(b"").is_none());
        assert_eq!(format!("{h:?}"), "Pseudonymiser(..)");
    }
}
