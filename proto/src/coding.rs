//! Scalar codings shared by the builder and the reader: duration coding,
//! UUIDs as 16 bytes, and per-request ids as 16 bytes or text. Client
//! addresses as bytes are in [`crate::address`].
//!
//! Each coding is specified in `proto/README.md`; these functions are the
//! reference implementation, and they never panic or overflow.

use uuid::Uuid;

/// Longest latency the schema carries: one day, in microseconds.
pub const MAX_DURATION_US: u64 = 86_400_000_000;

/// Largest difference between two durations: two days, in microseconds.
const MAX_DIFF_US: i64 = 2 * MAX_DURATION_US as i64;

/// Largest request or response size the schema carries: 2^48 bytes.
pub const MAX_SIZE_BYTES: u64 = 1 << 48;

/// Codes a duration: whole milliseconds `m` as `m << 1`, anything else as
/// `(us << 1) | 1`. Kong reports latencies in milliseconds, so most values
/// take the short form. Durations above [`MAX_DURATION_US`] are clamped.
pub fn encode_duration(us: u64) -> u64 {
    let us = us.min(MAX_DURATION_US);
    if us.is_multiple_of(1000) {
        (us / 1000) << 1
    } else {
        (us << 1) | 1
    }
}

/// Inverse of [`encode_duration`]; `None` when the result exceeds
/// [`MAX_DURATION_US`].
pub fn decode_duration(code: u64) -> Option<u64> {
    let value = code >> 1;
    let us = if code & 1 == 0 {
        value.checked_mul(1000)?
    } else {
        value
    };
    (us <= MAX_DURATION_US).then_some(us)
}

/// Codes a signed difference of durations (|d| at most two days): the whole
/// milliseconds or microseconds are zigzagged, then shifted past the flag.
pub fn encode_signed_duration(d: i64) -> u64 {
    let d = d.clamp(-MAX_DIFF_US, MAX_DIFF_US);
    let (magnitude, flag) = if d % 1000 == 0 { (d / 1000, 0) } else { (d, 1) };
    (zigzag(magnitude) << 1) | flag
}

/// Inverse of [`encode_signed_duration`]; `None` beyond two days.
pub fn decode_signed_duration(code: u64) -> Option<i64> {
    let magnitude = unzigzag(code >> 1);
    let d = if code & 1 == 0 {
        magnitude.checked_mul(1000)?
    } else {
        magnitude
    };
    (d.unsigned_abs() <= MAX_DIFF_US.unsigned_abs()).then_some(d)
}

/// Codes the upstream latency of a record relative to its total:
/// 0 when absent, else 1 + the signed code of `total - upstream`.
pub fn encode_upstream(total_us: u64, upstream_us: Option<u64>) -> u64 {
    match upstream_us {
        None => 0,
        Some(up) => {
            let total = total_us.min(MAX_DURATION_US) as i64;
            let up = up.min(MAX_DURATION_US) as i64;
            encode_signed_duration(total.saturating_sub(up)).saturating_add(1)
        }
    }
}

/// A duration code whose value is outside `0..=MAX_DURATION_US`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange;

/// Inverse of [`encode_upstream`]: `Ok(None)` when absent.
pub fn decode_upstream(total_us: u64, code: u64) -> Result<Option<u64>, OutOfRange> {
    let Some(code) = code.checked_sub(1) else {
        return Ok(None);
    };
    let diff = decode_signed_duration(code).ok_or(OutOfRange)?;
    let total = i64::try_from(total_us).map_err(|_| OutOfRange)?;
    let up = total.checked_sub(diff).ok_or(OutOfRange)?;
    match u64::try_from(up) {
        Ok(up) if up <= MAX_DURATION_US => Ok(Some(up)),
        _ => Err(OutOfRange),
    }
}

/// Zigzag, as protobuf's sint64: small magnitudes give small codes.
pub const fn zigzag(v: i64) -> u64 {
    (v.wrapping_shl(1) ^ v.wrapping_shr(63)) as u64
}

/// Inverse of [`zigzag`].
pub const fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ ((v & 1) as i64).wrapping_neg()
}

/// Parses a UUID only in its canonical form (36 characters, lowercase,
/// hyphenated), so that formatting it back gives the same text.
pub fn parse_canonical_uuid(s: &str) -> Option<[u8; 16]> {
    if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Uuid::try_parse(s).ok().map(|u| u.into_bytes())
}

/// Formats 16 bytes as a canonical UUID.
pub fn format_uuid(bytes: [u8; 16]) -> String {
    let mut buf = [0u8; 36];
    Uuid::from_bytes(bytes)
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned()
}

/// Parses 32 lowercase hex digits (Kong request ids, W3C trace ids).
pub fn parse_hex_id(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Uuid::try_parse(s).ok().map(|u| u.into_bytes())
}

/// A per-request id, as the reader hands it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdRef<'a> {
    /// 16 bytes, shown as 32 lowercase hex digits.
    Binary([u8; 16]),
    /// Any other id.
    Text(&'a str),
}

impl core::fmt::Display for IdRef<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IdRef::Binary(bytes) => {
                let mut buf = [0u8; 32];
                f.write_str(Uuid::from_bytes(*bytes).simple().encode_lower(&mut buf))
            }
            IdRef::Text(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn durations_round_trip_and_whole_milliseconds_are_short() {
        for us in [0, 1, 999, 1000, 20_000, 20_001, 800_000, MAX_DURATION_US] {
            assert_eq!(decode_duration(encode_duration(us)), Some(us), "{us}");
        }
        assert_eq!(encode_duration(20_000), 40, "20 ms fits one varint byte");
        assert_eq!(
            encode_duration(MAX_DURATION_US + 5),
            encode_duration(MAX_DURATION_US)
        );
        assert_eq!(decode_duration(u64::MAX), None);
        assert_eq!(decode_duration(u64::MAX - 1), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn upstream_round_trips_including_upstream_above_total() {
        for (total, up) in [
            (20_000, Some(18_000)),
            (5_000, Some(5_400)),
            (7, Some(0)),
            (9, None),
        ] {
            assert_eq!(decode_upstream(total, encode_upstream(total, up)), Ok(up));
        }
        assert_eq!(
            encode_upstream(20_000, Some(19_000)),
            5,
            "1 ms of gateway time"
        );
        let far = encode_upstream(0, Some(MAX_DURATION_US));
        assert_eq!(decode_upstream(1_000, far), Err(OutOfRange));
        assert_eq!(decode_upstream(0, u64::MAX), Err(OutOfRange));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn uuids_only_in_canonical_form() {
        let s = "0f1a4101-3327-4274-b1e4-484a4ab0c030";
        let bytes = parse_canonical_uuid(s).unwrap();
        assert_eq!(format_uuid(bytes), s);
        assert_eq!(parse_canonical_uuid(&s.to_uppercase()), None);
        assert_eq!(
            parse_canonical_uuid("0f1a41013327427 4b1e4484a4ab0c030"),
            None
        );
        assert_eq!(
            parse_canonical_uuid("{0f1a4101-3327-4274-b1e4-484a4ab0c03}"),
            None
        );
        let id = "2f6946328ffc4946b8c9120704a4a155";
        assert_eq!(IdRef::Binary(parse_hex_id(id).unwrap()).to_string(), id);
        assert_eq!(parse_hex_id(s), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn zigzag_matches_protobuf() {
        for (v, z) in [
            (0, 0),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i64::MAX, u64::MAX - 1),
            (i64::MIN, u64::MAX),
        ] {
            assert_eq!(zigzag(v), z);
            assert_eq!(unzigzag(z), v);
        }
    }
}
