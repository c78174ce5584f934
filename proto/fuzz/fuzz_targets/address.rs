//! Any text through the client-address parser: an address only when it
//! prints back exactly as it came, so an inline address reads as the text
//! the producer had; and any 4 or 16 bytes print as text that parses back
//! to them. The IPv4 parser takes exactly what the standard library's
//! takes, and the IPv6 one exactly the texts the standard library parses
//! and prints back the same, without dots. Never a panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kong_looker_proto::address::{AddressText, parse_canonical, parse_v4, parse_v6_canonical};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The byte parser for IPv4 agrees with the standard library's.
    let std_v4 = std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse::<Ipv4Addr>().ok());
    assert_eq!(parse_v4(data), std_v4);
    let std_v6 = std::str::from_utf8(data).ok().and_then(|s| {
        let ip = s.parse::<Ipv6Addr>().ok()?;
        (ip.to_string() == s && !s.contains('.')).then_some(ip)
    });
    assert_eq!(parse_v6_canonical(data), std_v6);
    let mut text = AddressText::default();
    if let Ok(s) = std::str::from_utf8(data)
        && let Some(ip) = parse_canonical(s)
    {
        assert_eq!(text.show(ip), s);
        assert_eq!(ip.to_string(), s);
    }
    let ip = match data.len() {
        4 => <[u8; 4]>::try_from(data).map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        16 => <[u8; 16]>::try_from(data).map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        _ => return,
    };
    if let Ok(ip) = ip {
        let shown = text.show(ip).to_owned();
        assert_eq!(parse_canonical(&shown), Some(ip), "{shown}");
    }
});
