//! Client addresses as 4 or 16 bytes (`Records.client_inline`): which
//! texts may travel that way, and how a reader prints them back.
//!
//! The text is what nginx's `$remote_addr` gives and what Rust's `IpAddr`
//! prints: IPv4 in dotted decimal without leading zeros; IPv6 as RFC 5952
//! prints it (lowercase hex, no leading zeros, the longest run of two or
//! more zero groups as `::`, the first of equal runs), and an IPv4-mapped
//! address as `::ffff:` and its dotted IPv4. An address is inline only
//! when it prints back exactly as it came. The printer is written out here
//! (tested against the standard library's). IPv4, the address of most
//! requests, is read by a short parser of its own that takes exactly what
//! the standard one takes; IPv6 in its canonical text by another, which
//! checks the form as it reads (the standard parser and a print to compare
//! cost about 2,900 instructions an address). Other IPv6 texts (capitals,
//! leading zeros, embedded IPv4) go through the standard parser.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest text printed: eight full groups.
const MAX_TEXT: usize = 39;

/// Parses `s` when it is an address in the canonical text above.
pub fn parse_canonical(s: &str) -> Option<IpAddr> {
    if let Some(v4) = parse_v4(s.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    if let Some(v6) = parse_v6_canonical(s.as_bytes()) {
        return Some(IpAddr::V6(v6));
    }
    // What is left that prints as it came: `::ffff:` and a dotted IPv4.
    if s.len() > MAX_TEXT || !s.contains('.') {
        return None;
    }
    let ip: IpAddr = s.parse().ok()?;
    let mut text = AddressText::default();
    (text.show(ip) == s).then_some(ip)
}

/// IPv4 dotted decimal from bytes, as `Ipv4Addr`'s `FromStr` takes it:
/// four numbers up to 255, without leading zeros, signs or spaces. The
/// standard parser costs a UTF-8 check and several times the work, and
/// this runs on every request.
pub fn parse_v4(bytes: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut rest = bytes;
    for (i, octet) in octets.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let digit = |b: u8| u16::from(b.wrapping_sub(b'0'));
        // Longest first; a leading zero stands alone, so "01" fails at
        // the dot expected after the "0".
        let (value, used) = match *rest {
            [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => (
                digit(a)
                    .wrapping_mul(100)
                    .wrapping_add(digit(b).wrapping_mul(10))
                    .wrapping_add(digit(c)),
                3,
            ),
            [a @ b'1'..=b'9', b @ b'0'..=b'9', ..] => {
                (digit(a).wrapping_mul(10).wrapping_add(digit(b)), 2)
            }
            [a @ b'0'..=b'9', ..] => (digit(a), 1),
            _ => return None,
        };
        *octet = u8::try_from(value).ok()?;
        rest = rest.get(used..)?;
    }
    rest.is_empty().then_some(Ipv4Addr::from(octets))
}

/// An IPv6 address from bytes, only when they are the text
/// [`AddressText::show`] prints for it and that text has no dots: lowercase
/// groups without leading zeros, and `::` exactly where the printer puts
/// it (the longest run of two or more zero groups, the first of equals).
/// `None` for anything else, which may still be an address.
pub fn parse_v6_canonical(bytes: &[u8]) -> Option<Ipv6Addr> {
    if bytes.len() < 2 || bytes.len() > MAX_TEXT {
        return None;
    }
    let mut groups = [0u16; 8];
    let mut n = 0usize;
    // Where `::` stands, as the number of groups before it.
    let mut gap = None;
    let mut rest = bytes;
    if let Some(after) = rest.strip_prefix(b"::") {
        gap = Some(0);
        rest = after;
    }
    while !rest.is_empty() {
        let mut value = 0u16;
        let mut digits = 0usize;
        for &b in rest.iter().take(4) {
            let d = match b {
                b'0'..=b'9' => b.wrapping_sub(b'0'),
                b'a'..=b'f' => b.wrapping_sub(b'a' - 10),
                _ => break,
            };
            value = value << 4 | u16::from(d);
            digits = digits.wrapping_add(1);
        }
        // One digit at least, and a zero only alone.
        if digits == 0 || (digits > 1 && rest.first() == Some(&b'0')) {
            return None;
        }
        *groups.get_mut(n)? = value;
        n = n.wrapping_add(1);
        rest = rest.get(digits..)?;
        match rest {
            [] => {}
            [b':', b':', tail @ ..] if gap.is_none() => {
                gap = Some(n);
                rest = tail;
            }
            // A single colon must have a group after it.
            [b':', tail @ ..] if !tail.is_empty() && tail.first() != Some(&b':') => rest = tail,
            _ => return None,
        }
    }
    // `::` stands for two groups or more: a single zero is written `0`.
    let (groups, zeros) = match gap {
        None if n == 8 => (groups, 0),
        Some(at) if n <= 6 => {
            let zeros = 8usize.wrapping_sub(n);
            let mut full = [0u16; 8];
            for (i, g) in groups.iter().take(n).enumerate() {
                let to = if i < at { i } else { i.wrapping_add(zeros) };
                *full.get_mut(to)? = *g;
            }
            (full, zeros)
        }
        _ => return None,
    };
    // The `::` must be where the printer puts it.
    if compressed_run(&groups) != gap.map(|at| (at, zeros)) {
        return None;
    }
    let ip = Ipv6Addr::from(groups);
    // The printer writes an IPv4-mapped address with dots.
    ip.to_ipv4_mapped().is_none().then_some(ip)
}

/// Where `::` goes in an IPv6 address's text, as (first group, groups):
/// the longest run of two or more zero groups, the first of equals.
fn compressed_run(groups: &[u16; 8]) -> Option<(usize, usize)> {
    let (mut best, mut best_len, mut run, mut run_len) = (0usize, 0usize, 0usize, 0usize);
    for (i, g) in groups.iter().enumerate() {
        if *g == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len = run_len.wrapping_add(1);
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    (best_len >= 2).then_some((best, best_len))
}

/// A stack buffer an address is printed into.
pub struct AddressText {
    buf: [u8; MAX_TEXT],
    len: usize,
}

impl Default for AddressText {
    fn default() -> Self {
        AddressText {
            buf: [0; MAX_TEXT],
            len: 0,
        }
    }
}

impl AddressText {
    /// `ip` in the canonical text, in place of what the buffer held.
    pub fn show(&mut self, ip: IpAddr) -> &str {
        self.len = 0;
        match ip {
            IpAddr::V4(v4) => self.push_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => {
                    self.push_bytes(b"::ffff:");
                    self.push_v4(v4);
                }
                None => self.push_v6(v6.segments()),
            },
        }
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }

    // Printed here rather than through `fmt`: the formatter's machinery
    // cost a capture 2,300 instructions per IPv6 address (bench/RESULTS.md).
    fn push_v6(&mut self, groups: [u16; 8]) {
        let (best, best_len) = compressed_run(&groups).unwrap_or((groups.len(), 0));
        let after = best.saturating_add(best_len);
        for (i, g) in groups.iter().enumerate() {
            if i == best {
                self.push_bytes(b"::");
            } else if i > best && i < after {
                continue;
            } else {
                if i != 0 && i != after {
                    self.push_bytes(b":");
                }
                self.push_hex(*g);
            }
        }
    }

    fn push_v4(&mut self, v4: core::net::Ipv4Addr) {
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i != 0 {
                self.push_bytes(b".");
            }
            let (h, t, u) = (octet / 100, octet / 10 % 10, octet % 10);
            if h != 0 {
                self.push_digit(h);
            }
            if h != 0 || t != 0 {
                self.push_digit(t);
            }
            self.push_digit(u);
        }
    }

    fn push_hex(&mut self, g: u16) {
        let mut started = false;
        for shift in [12u32, 8, 4, 0] {
            let nibble = ((g >> shift) & 0xf) as u8;
            if nibble != 0 || started || shift == 0 {
                started = true;
                self.push_digit(nibble);
            }
        }
    }

    /// A digit below 16, in lowercase hex.
    fn push_digit(&mut self, d: u8) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        if let Some(c) = HEX.get(usize::from(d)) {
            self.push_bytes(core::slice::from_ref(c));
        }
    }

    /// Appends; never past the buffer, which every address fits.
    fn push_bytes(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn the_ipv4_parser_takes_what_the_standard_one_takes() {
        let parts = [
            "", "0", "00", "000", "1", "01", "9", "10", "25", "99", "100", "199", "255", "256",
            "300", "999", "1000", "+1", "-1", " 1", "1 ", "a", "0x1", "\u{664}",
        ];
        let mut texts = Vec::new();
        for a in parts {
            texts.push(a.to_string());
            for b in parts {
                texts.push(format!("{a}.{b}"));
                for c in parts {
                    texts.push(format!("{a}.{b}.{c}"));
                    for d in parts {
                        texts.push(format!("{a}.{b}.{c}.{d}"));
                    }
                }
            }
        }
        for extra in [
            "1.2.3.4.5",
            "1.2.3.4.",
            ".1.2.3.4",
            "1..2.3",
            "255.255.255.255",
        ] {
            texts.push(extra.to_string());
        }
        for text in &texts {
            let ours = parse_v4(text.as_bytes());
            assert_eq!(ours, text.parse::<Ipv4Addr>().ok(), "{text:?}");
            if let Some(ip) = ours {
                assert_eq!(parse_canonical(text), Some(IpAddr::V4(ip)));
            }
        }
        assert_eq!(parse_v4(b"1.2.3.\xff"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn only_addresses_that_print_back_the_same_travel_as_bytes() {
        for s in [
            "203.0.113.45",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8:1a2b:3c4d::5e6f:7a8b",
            "::1",
            "::",
            "1::",
            "::ffff:203.0.113.45",
            "::ffff:255.255.255.255",
            "fe80::1",
            "2001:db8:0:1:1:1:1:1",
            "2001:db8::1:0:0:1",
            "1:0:0:1::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip = parse_canonical(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(AddressText::default().show(ip), s);
        }
        for s in [
            "",
            "203.0.113.045",
            "203.0.113",
            "203.0.113.1.2",
            "256.0.0.1",
            "203.0.113.0/24",
            " 203.0.113.45",
            "+1.2.3.4",
            "2001:DB8::1",
            "2001:db8:0:0:0:0:0:1",
            "2001:db8::0:1",
            "2001:0db8::1",
            "2001:db8::1%eth0",
            "[2001:db8::1]",
            "1:2:3:4:5:6:7::",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            ":1::",
            "::1.2.3.4",
            "::ffff:1.2.3.04",
            "1.2.3.4::",
            "unix:",
            "1f3870be274f6c49b3e31a0c6728957f",
            &"1".repeat(200),
        ] {
            assert_eq!(parse_canonical(s), None, "{s}");
        }
    }

    /// What the IPv6 byte parser must take: what the standard library
    /// parses and prints back the same, without dots.
    fn printed_back_v6(text: &str) -> Option<Ipv6Addr> {
        let ip = text.parse::<Ipv6Addr>().ok()?;
        (ip.to_string() == text && !text.contains('.')).then_some(ip)
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_ipv6_parser_takes_exactly_the_printed_form() {
        let mut x: u128 = 0x243f_6a88_85a3_08d3_1319_8a2e_0370_7344;
        let mut texts = Vec::new();
        for i in 0..400u32 {
            x = x.rotate_left(11) ^ u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            // Every mix of zero groups, and groups of one to four digits.
            let mask: u128 = (0..8)
                .filter(|g| (i >> g) & 1 == 1)
                .map(|g| 0x0fffu128 >> (4 * ((i >> 8) % 4)) << (16 * g))
                .sum();
            let canonical = Ipv6Addr::from(x & mask).to_string();
            // Near misses: each byte dropped, doubled, or replaced by, and
            // each place given, a digit, a zero, a capital, a colon or a dot.
            let bytes = canonical.as_bytes();
            for at in 0..=bytes.len() {
                let (head, tail) = bytes.split_at(at);
                texts.push([head, tail.get(1..).unwrap_or_default()].concat());
                for b in [b"0", b"1", b"f", b"A", b":", b"::", b"."] as [&[u8]; 7] {
                    texts.push([head, b, tail].concat());
                    texts.push([head, b, tail.get(1..).unwrap_or_default()].concat());
                }
            }
            texts.push(canonical.into_bytes());
        }
        for extra in [
            "::",
            "::1",
            "1::",
            "0::",
            "::0",
            "0:0::",
            "1:0::",
            "::ffff:102:304",
            "::ffff:0:102:304",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1::2:3:4:5:6:7",
            "1:0:2:3:4:5:6:7",
            "0:0:1:0:0:1::",
            "1:0:0:1::",
            "::1:0:0:1",
            "1::1:0:0:1",
            "1:0:0:1::1",
            "12345::",
            "1:::",
            ":::",
            ":1::",
            "::1:",
        ] {
            texts.push(extra.as_bytes().to_vec());
        }
        let mut taken = 0;
        for bytes in &texts {
            let ours = parse_v6_canonical(bytes);
            let std = core::str::from_utf8(bytes).ok().and_then(printed_back_v6);
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(bytes));
            if let (Some(ip), Ok(s)) = (ours, core::str::from_utf8(bytes)) {
                assert_eq!(parse_canonical(s), Some(IpAddr::V6(ip)));
                taken += 1;
            }
        }
        assert!(taken > 400, "only {taken} of {} taken", texts.len());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_address_prints_back_to_itself() {
        // A stride through the address space, and every mix of zero groups.
        let mut x: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834;
        for i in 0..20_000u32 {
            x = x.rotate_left(7) ^ u128::from(i).wrapping_mul(0x2545_f491_4f6c_dd1d);
            let mask: u128 = (0..8)
                .filter(|g| (i >> g) & 1 == 1)
                .map(|g| 0xffffu128 << (16 * g))
                .sum();
            for ip in [
                IpAddr::V6(Ipv6Addr::from(x & mask)),
                IpAddr::V4(Ipv4Addr::from(x as u32)),
                IpAddr::V6(Ipv4Addr::from(x as u32).to_ipv6_mapped()),
            ] {
                let std = ip.to_string();
                assert_eq!(AddressText::default().show(ip), std);
                assert_eq!(parse_canonical(&std), Some(ip), "{std}");
            }
        }
    }
}
