//! `$kong_looker_log`: the figures of a finished request that nginx
//! otherwise hands a filter one variable at a time, and the request's
//! fields that it otherwise reads from the header map, joined into one by a
//! `map` in Kong's nginx config (`kong_looker.nginx.conf`, included with
//! `nginx_http_include`). The filter then reads them in one host call
//! instead of a header map, seven properties and a clock read: in Kong's
//! engine each read costs more than the figure it returns
//! (`bench/RESULTS.md`). This module owns the variable's formats and their
//! parser; the capturer decides when to read it, and falls back to the
//! single reads where it is not defined.
//!
//! [`figures`] reads the numbers of a line in one pass where nginx wrote
//! them in their usual shape, and by [`parse`] and [`timing`] otherwise,
//! with the same result either way. [`request_fields`] splits the rest.

use core::ops::Range;

use super::timing;

/// The variable's name in nginx.
pub const VARIABLE: &str = "kong_looker_log";
/// The property that reads it.
pub const PROPERTY: &str = "ngx.kong_looker_log";

/// What the map gives the variable: a version, then the figures, then the
/// request's fields, each after a newline. `|` is in none of the figures;
/// the client address, the only one that is not a number or a list of
/// numbers, ends them. A newline is in no figure, and nginx refuses it in
/// a client's header; a field that has one anyway (a decoded `%0A` in the
/// path, a header a plugin wrote) makes too many fields, and that request's
/// headers are read from the header map instead.
pub const FORMAT: &str = "kl2|$status|$request_time|$upstream_status|$upstream_response_time|\
                          $request_length|$bytes_sent|$msec|$remote_addr\n\
                          $request_method\n$uri$is_args$args\n$scheme\n$http_host\n\
                          $http_user_agent\n$http_authorization\n$http_traceparent\n\
                          $http_x_consumer_id\n$http_x_consumer_username\n\
                          $http_x_consumer_custom_id\n$http_x_credential_identifier\n\
                          $http_x_anonymous_consumer\n$http_x_consumer_groups\n\
                          $http_x_authenticated_groups\n$http_x_authenticated_userid\n\
                          $http_x_authenticated_scope\n$http_apikey";

/// The request's fields of a [`FORMAT`] line, in order: what the
/// header map's `:method`, `:path` (`r->uri`, then `?` and the arguments
/// where there are any), `:scheme` and headers would give. `$http_*` is
/// empty for a header that is absent or empty, and joins repeated headers
/// with `, `.
pub const REQUEST_FIELDS: [&str; 17] = [
    "$request_method",
    "$uri$is_args$args",
    "$scheme",
    "$http_host",
    "$http_user_agent",
    "$http_authorization",
    "$http_traceparent",
    "$http_x_consumer_id",
    "$http_x_consumer_username",
    "$http_x_consumer_custom_id",
    "$http_x_credential_identifier",
    "$http_x_anonymous_consumer",
    "$http_x_consumer_groups",
    "$http_x_authenticated_groups",
    "$http_x_authenticated_userid",
    "$http_x_authenticated_scope",
    "$http_apikey",
];

/// The format of the release before: the figures alone, the client
/// address the rest of the line. Still read; the request's headers then
/// come from the header map.
pub const FORMAT_V1: &str = "kl1|$status|$request_time|$upstream_status|$upstream_response_time|\
                             $request_length|$bytes_sent|$msec|$remote_addr";

/// The versions a line starts with, and whether its request fields follow.
const VERSIONS: [(&[u8], bool); 2] = [(b"kl1|", false), (b"kl2|", true)];
/// Figures between the version and the client address.
const FIGURES: usize = 7;
/// Longest run of figures accepted: an upstream list of a few retries and
/// an IPv6 address fit many times over. The request's fields are as long
/// as nginx's header buffers let them be.
pub const MAX_BYTES: usize = 2048;

/// One request's line, split: each figure as nginx wrote it (empty where
/// nginx had no value, as a single read would find nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// `$status`: what `response.code` reads.
    pub status: &'a [u8],
    /// `$request_time`, seconds.
    pub request_time: &'a [u8],
    /// `$upstream_status`: one per upstream tried.
    pub upstream_status: &'a [u8],
    /// `$upstream_response_time`: one per upstream tried.
    pub upstream_response_time: &'a [u8],
    /// `$request_length`: the request's headers and body.
    pub request_length: &'a [u8],
    /// `$bytes_sent`: the response's headers and body.
    pub bytes_sent: &'a [u8],
    /// `$msec` as Unix milliseconds: nginx's clock when the log phase ran.
    pub now_ms: Option<i64>,
    /// Where the client address lies in the line.
    pub remote_addr: Range<usize>,
    /// Where the request's fields start (after the figures' newline), in a
    /// line whose format has them.
    pub request_at: Option<usize>,
}

/// Why a line was not read; the capturer then reads the figures one by one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError {
    /// Longer than [`MAX_BYTES`].
    TooLong(usize),
    /// Not this version's format (another kong-looker's include, or not
    /// ours at all).
    Version,
    /// Fewer fields than the format has.
    Fields(usize),
}

impl core::fmt::Display for LineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LineError::TooLong(n) => write!(f, "{n} bytes, more than {MAX_BYTES}"),
            LineError::Version => write!(f, "does not start with \"kl2|\" or \"kl1|\""),
            LineError::Fields(n) => {
                write!(f, "{n} fields where the format has {}", FIGURES + 2)
            }
        }
    }
}

/// A line's figures as numbers: what [`parse`] then [`timing`]'s readers
/// give ([`Figures::of`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// `$status` ([`timing::status`]).
    pub status: Option<u16>,
    /// `$request_time` ([`timing::seconds_to_us`]).
    pub request_time_us: Option<u64>,
    /// `$upstream_status`, the last try ([`timing::last_upstream_status`]).
    pub upstream_status: Option<u16>,
    /// `$upstream_response_time`, all tries ([`timing::upstream_us`]).
    pub upstream_time_us: Option<u64>,
    /// `$request_length` ([`timing::size`]).
    pub request_length: Option<u64>,
    /// `$bytes_sent` ([`timing::size`]).
    pub bytes_sent: Option<u64>,
    /// `$msec` as Unix milliseconds.
    pub now_ms: Option<i64>,
    /// Where the client address lies in the line.
    pub remote_addr: Range<usize>,
    /// Where the request's fields start, in a line whose format has them.
    pub request_at: Option<usize>,
}

impl Figures {
    /// The figures of a split line.
    pub fn of(line: &LogLine<'_>) -> Figures {
        Figures {
            status: timing::status(line.status),
            request_time_us: timing::seconds_to_us(line.request_time),
            upstream_status: timing::last_upstream_status(line.upstream_status),
            upstream_time_us: timing::upstream_us(line.upstream_response_time),
            request_length: timing::size(line.request_length),
            bytes_sent: timing::size(line.bytes_sent),
            now_ms: line.now_ms,
            remote_addr: line.remote_addr.clone(),
            request_at: line.request_at,
        }
    }
}

/// The figures of a line: `Figures::of(&parse(line)?)`, in one pass over
/// the line where each figure has the shape nginx gives it on nearly
/// every request (a status of three digits, times under ten seconds as
/// `%T.%03M`, one upstream try or none). Split first, then read figure by
/// figure, the line cost some 1,400 Wasm instructions a request, more
/// than the header scan.
pub fn figures(line: &[u8]) -> Result<Figures, LineError> {
    if let Some(f) = usual_figures(line) {
        return Ok(f);
    }
    parse(line).map(|l| Figures::of(&l))
}

/// [`figures`] for a line of the usual shape; `None` for any other, which
/// is then split and read figure by figure.
fn usual_figures(line: &[u8]) -> Option<Figures> {
    let (at, figures, request_at) = split(line).ok()?;
    let mut rest = figures.get(at..)?;
    let status = status_field(&mut rest)?;
    let request_time_us = Some(seconds_field(&mut rest)?);
    // No upstream (nginx answered itself) leaves both empty.
    let (upstream_status, upstream_time_us) = match rest.split_first() {
        Some((b'|', after)) => match after.split_first() {
            Some((b'|', after)) => {
                rest = after;
                (None, None)
            }
            _ => return None,
        },
        _ => {
            let s = status_field(&mut rest)?;
            (Some(s), Some(seconds_field(&mut rest)?))
        }
    };
    let request_length = Some(size_field(&mut rest)?);
    let bytes_sent = Some(size_field(&mut rest)?);
    let now_ms = Some(msec_field(&mut rest)?);
    Some(Figures {
        status: Some(status),
        request_time_us,
        upstream_status,
        upstream_time_us,
        request_length,
        bytes_sent,
        now_ms,
        remote_addr: figures.len().wrapping_sub(rest.len())..figures.len(),
        request_at,
    })
}

/// The line's figures, up to the newline before its request fields (or
/// the whole line in a format without them); where they start after the
/// version; and where the request fields start.
fn split(line: &[u8]) -> Result<(usize, &[u8], Option<usize>), LineError> {
    let Some(&(version, fields)) = VERSIONS.iter().find(|(v, _)| line.starts_with(v)) else {
        return Err(LineError::Version);
    };
    let (figures, request_at) = match fields {
        true => match memchr::memchr(b'\n', line) {
            Some(end) => (line.get(..end).unwrap_or(line), end.checked_add(1)),
            None => (line, None),
        },
        false => (line, None),
    };
    if figures.len() > MAX_BYTES {
        return Err(LineError::TooLong(figures.len()));
    }
    Ok((version.len(), figures, request_at))
}

fn digit(d: u8) -> Option<u8> {
    d.is_ascii_digit().then(|| d.wrapping_sub(b'0'))
}

/// Three digits and `|`, 100 to 999.
fn status_field(rest: &mut &[u8]) -> Option<u16> {
    let ([a, b, c, b'|'], after) = rest.split_first_chunk::<4>()? else {
        return None;
    };
    let value = u16::from(digit(*a)?)
        .wrapping_mul(100)
        .wrapping_add(u16::from(digit(*b)?).wrapping_mul(10))
        .wrapping_add(u16::from(digit(*c)?));
    *rest = after;
    (100..=999).contains(&value).then_some(value)
}

/// `d.ddd` and `|`, as microseconds.
fn seconds_field(rest: &mut &[u8]) -> Option<u64> {
    let ([w, b'.', a, b, c, b'|'], after) = rest.split_first_chunk::<6>()? else {
        return None;
    };
    let us = u64::from(digit(*w)?)
        .wrapping_mul(1_000_000)
        .wrapping_add(u64::from(digit(*a)?).wrapping_mul(100_000))
        .wrapping_add(u64::from(digit(*b)?).wrapping_mul(10_000))
        .wrapping_add(u64::from(digit(*c)?).wrapping_mul(1_000));
    *rest = after;
    Some(us)
}

/// One to 19 digits (no overflow) and `|`.
fn size_field(rest: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, &b) in rest.iter().enumerate().take(20) {
        if b == b'|' {
            if i == 0 {
                return None;
            }
            *rest = rest.get(i.wrapping_add(1)..)?;
            return Some(value);
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(digit(b)?));
    }
    None
}

/// Eight ASCII digits as the number they write, read as one word: each
/// byte checked, then pairs, fours and the eight joined by three
/// multiplies. For `$msec`'s seconds, where a digit at a time cost some
/// 20 to 40 instructions more in Kong's engine; for a size of three or
/// four digits a word saved only some 7 of a byte loop's 90, and sizes
/// are read a byte at a time.
fn eight_digits(chunk: &[u8; 8]) -> Option<u32> {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    let v = u64::from_le_bytes(*chunk);
    // A digit is 0x30 to 0x39: its high nibble is 3, and stays 3 when 6 is
    // added (no byte carries into the next, as each is under 0x40).
    if v & HIGH != THREES || v.wrapping_add(0x0606_0606_0606_0606) & HIGH != THREES {
        return None;
    }
    // The first digit is the lowest byte. No lane overflows into the next:
    // 9 * 10 + 9, 99 * 100 + 99, 9,999 * 10,000 + 9,999.
    let v = v & 0x0F0F_0F0F_0F0F_0F0F;
    let v = v.wrapping_mul(10).wrapping_add(v >> 8) & 0x00FF_00FF_00FF_00FF;
    let v = v.wrapping_mul(100).wrapping_add(v >> 16) & 0x0000_FFFF_0000_FFFF;
    let v = v.wrapping_mul(10_000).wrapping_add(v >> 32);
    u32::try_from(v & 0xFFFF_FFFF).ok()
}

/// `$msec` ([`msec_to_ms`]) and `|`.
fn msec_field(rest: &mut &[u8]) -> Option<i64> {
    // Ten digits of seconds until the year 2286: a fixed shape, read
    // without looking for its end first.
    if let Some(([head @ .., s8, s9, b'.', a, b, c, b'|'], after)) = rest.split_first_chunk::<15>()
    {
        let ms = i64::from(eight_digits(head)?)
            .wrapping_mul(100)
            .wrapping_add(i64::from(digit(*s8)?).wrapping_mul(10))
            .wrapping_add(i64::from(digit(*s9)?));
        let millis = i64::from(digit(*a)?)
            .wrapping_mul(100)
            .wrapping_add(i64::from(digit(*b)?).wrapping_mul(10))
            .wrapping_add(i64::from(digit(*c)?));
        *rest = after;
        return Some(ms.wrapping_mul(1000).wrapping_add(millis));
    }
    let end = rest.iter().take(17).position(|&b| b == b'|')?;
    let ms = msec_to_ms(rest.get(..end)?)?;
    *rest = rest.get(end.wrapping_add(1)..)?;
    Some(ms)
}

/// Splits a line that nginx wrote by [`FORMAT`].
pub fn parse(line: &[u8]) -> Result<LogLine<'_>, LineError> {
    let (at, line_figures, request_at) = split(line)?;
    let mut parts = line_figures
        .get(at..)
        .unwrap_or_default()
        .splitn(FIGURES + 1, |&b| b == b'|');
    let mut figures: [&[u8]; FIGURES] = [&[]; FIGURES];
    for (fields, slot) in (1..).zip(figures.iter_mut()) {
        *slot = parts.next().ok_or(LineError::Fields(fields))?;
    }
    let address = parts.next().ok_or(LineError::Fields(FIGURES + 1))?;
    let [
        status,
        request_time,
        upstream_status,
        upstream_response_time,
        request_length,
        bytes_sent,
        msec,
    ] = figures;
    Ok(LogLine {
        status,
        request_time,
        upstream_status,
        upstream_response_time,
        request_length,
        bytes_sent,
        now_ms: msec_to_ms(msec),
        remote_addr: line_figures.len().saturating_sub(address.len())..line_figures.len(),
        request_at,
    })
}

/// Where each of [`REQUEST_FIELDS`] lies in `line`, whose request fields
/// start at `at` ([`Figures::request_at`]); `None` when there are not
/// exactly that many, as when a value holds a newline.
pub fn request_fields(line: &[u8], at: usize) -> Option<[Range<usize>; REQUEST_FIELDS.len()]> {
    let mut fields: [Range<usize>; REQUEST_FIELDS.len()] = Default::default();
    request_fields_into(line, at, &mut fields).then_some(fields)
}

/// [`request_fields`] into `fields`, for a caller that keeps them where
/// they are used (returned by value, they were a `memory.copy` in Wasm,
/// and a fresh array is zeroed first): whether there were exactly that
/// many, and `fields` holds them; else it holds some.
pub fn request_fields_into(
    line: &[u8],
    at: usize,
    fields: &mut [Range<usize>; REQUEST_FIELDS.len()],
) -> bool {
    let Some(rest) = line.get(at..) else {
        return false;
    };
    let Some((last, between)) = fields.split_last_mut() else {
        return false;
    };
    let mut slots = between.iter_mut();
    let mut start = 0usize;
    let all = each_newline(rest, |end| {
        // A newline past the last field's start: some value had one.
        *slots.next()? = at.wrapping_add(start)..at.wrapping_add(end);
        start = end.wrapping_add(1);
        Some(())
    })
    .is_some();
    // A newline short: a field is missing.
    if !all || slots.next().is_some() {
        return false;
    }
    *last = at.wrapping_add(start)..line.len();
    true
}

/// Calls `found` with the offset of each newline in `bytes`, in order,
/// until it returns `None` (which it then returns).
///
/// With Wasm SIMD, 64 bytes at a time: the newlines of four 16-byte
/// chunks in one 64-bit mask, so that a run without one (most of a token
/// or an agent) costs a few instructions a chunk and one test. memchr's
/// iterator starts its search afresh for each of the seventeen fields, and
/// in Wasm that setup cost more than most fields' bytes: the split was
/// some 1,000 instructions a request at high cardinality
/// (`bench/RESULTS.md`). Natively memchr is as fast.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn each_newline(bytes: &[u8], mut found: impl FnMut(usize) -> Option<()>) -> Option<()> {
    use core::arch::wasm32::{u8x16_bitmask, u8x16_eq, u8x16_splat, v128, v128_load};
    const LANES: usize = 16;
    const BLOCK: usize = 4 * LANES;
    let newline = u8x16_splat(b'\n');
    let mask = |chunk: &[u8; LANES]| {
        // SAFETY: `chunk` is sixteen readable bytes, and `v128_load` reads
        // exactly those, at any alignment.
        #[allow(unsafe_code)]
        let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
        u8x16_bitmask(u8x16_eq(v, newline))
    };
    let mut each = |base: usize, mut bits: u64| {
        while bits != 0 {
            found(base.wrapping_add(bits.trailing_zeros() as usize))?;
            bits &= bits.wrapping_sub(1);
        }
        Some(())
    };
    let (blocks, rest) = bytes.as_chunks::<BLOCK>();
    for (i, block) in blocks.iter().enumerate() {
        let (chunks, _) = block.as_chunks::<LANES>();
        let bits = chunks.iter().enumerate().fold(0u64, |bits, (j, chunk)| {
            bits | u64::from(mask(chunk)) << j.wrapping_mul(LANES)
        });
        each(i.wrapping_mul(BLOCK), bits)?;
    }
    let at = bytes.len().wrapping_sub(rest.len());
    let (chunks, tail) = rest.as_chunks::<LANES>();
    for (i, chunk) in chunks.iter().enumerate() {
        each(
            at.wrapping_add(i.wrapping_mul(LANES)),
            u64::from(mask(chunk)),
        )?;
    }
    if tail.is_empty() {
        return Some(());
    }
    // The tail: the last sixteen bytes, less the lanes already seen; a
    // value shorter than that, a byte at a time.
    let from = bytes.len().wrapping_sub(LANES);
    match bytes.get(from..).and_then(|b| b.first_chunk::<LANES>()) {
        Some(last) => {
            let seen = LANES.wrapping_sub(tail.len());
            each(from, u64::from(mask(last) >> seen << seen))
        }
        None => {
            for (i, _) in tail.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                found(i)?;
            }
            Some(())
        }
    }
}

/// Calls `found` with the offset of each newline in `bytes`, in order,
/// until it returns `None` (which it then returns).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn each_newline(bytes: &[u8], mut found: impl FnMut(usize) -> Option<()>) -> Option<()> {
    memchr::memchr_iter(b'\n', bytes).try_for_each(&mut found)
}

/// nginx's `$msec` (`1767614400.123`) as milliseconds.
fn msec_to_ms(text: &[u8]) -> Option<i64> {
    // Up to 12 digits of seconds: past the year 30,000. With the three of
    // milliseconds, under 10^15: no step can overflow, so the multiplies
    // are plain. (A checked `i64` multiply is a call to `__multi3` in
    // wasm32, some 50 instructions a digit.)
    let [secs @ .., b'.', a, b, c] = text else {
        return None;
    };
    if secs.is_empty() || secs.len() > 12 {
        return None;
    }
    let digit = |d: u8| d.is_ascii_digit().then(|| i64::from(d.wrapping_sub(b'0')));
    let mut ms: i64 = 0;
    for &d in secs {
        ms = ms.wrapping_mul(10).wrapping_add(digit(d)?);
    }
    let millis = digit(*a)?
        .wrapping_mul(100)
        .wrapping_add(digit(*b)?.wrapping_mul(10))
        .wrapping_add(digit(*c)?);
    Some(ms.wrapping_mul(1000).wrapping_add(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[test]
    fn a_proxied_request_splits_into_its_figures() {
        let line = b"kl1|200|0.012|502, 200|0.004, 0.007|431|1290|1767614400.123|2001:db8::7";
        let l = parse(line).unwrap();
        assert_eq!(l.status, b"200");
        assert_eq!(l.request_time, b"0.012");
        assert_eq!(l.upstream_status, b"502, 200");
        assert_eq!(l.upstream_response_time, b"0.004, 0.007");
        assert_eq!(l.request_length, b"431");
        assert_eq!(l.bytes_sent, b"1290");
        assert_eq!(l.now_ms, Some(1_767_614_400_123));
        assert_eq!(&line[l.remote_addr.clone()], b"2001:db8::7");
    }

    #[test]
    fn what_nginx_did_not_have_is_empty() {
        // Answered by nginx itself: no upstream figures.
        let line = b"kl1|301|0.000|||87|312|1767614400.000|127.0.0.1";
        let l = parse(line).unwrap();
        assert_eq!(
            (l.upstream_status, l.upstream_response_time),
            (&b""[..], &b""[..])
        );
        assert_eq!(l.now_ms, Some(1_767_614_400_000));
        assert_eq!(&line[l.remote_addr.clone()], b"127.0.0.1");
        let line = b"kl1|000||||0|0||";
        let l = parse(line).unwrap();
        assert_eq!(
            (l.now_ms, l.remote_addr.clone()),
            (None, line.len()..line.len())
        );
        assert_eq!(l.request_at, None);
    }

    #[test]
    fn another_format_is_refused_by_name() {
        assert_eq!(parse(b""), Err(LineError::Version));
        assert_eq!(
            parse(b"kl3|200|0.001|||1|1|1.000|::1"),
            Err(LineError::Version)
        );
        assert_eq!(parse(b"200 0.001"), Err(LineError::Version));
        let e = parse(b"kl1|200|0.001").unwrap_err();
        assert_eq!(e, LineError::Fields(3));
        assert_eq!(e.to_string(), "3 fields where the format has 9");
        let mut long = b"kl1|".to_vec();
        long.resize(MAX_BYTES + 1, b'1');
        assert_eq!(parse(&long), Err(LineError::TooLong(MAX_BYTES + 1)));
        long[2] = b'2';
        assert_eq!(parse(&long), Err(LineError::TooLong(MAX_BYTES + 1)));
    }

    /// Each figure's shapes: nginx's usual ones, then rarer ones that are
    /// read the long way, then ones read as nothing.
    const STATUSES: &[&str] = &["200", "404", "999", "000", "99", "1000", " 200", "2x0", ""];
    const TIMES: &[&str] = &[
        "0.012", "9.999", "10.000", "0.5", "12", " 0.001", "0.0001", "-", "", "1.2.3", "0x001",
    ];
    const UPSTREAM_STATUSES: &[&str] = &["200", "502, 200", "502 : 200", "-", "", "20", "abc"];
    const UPSTREAM_TIMES: &[&str] = &[
        "0.004",
        "0.004, 0.007",
        "-, 0.007",
        "0.004 : 0.001",
        "",
        "-",
        "1.5",
    ];
    const SIZES: &[&str] = &[
        "431",
        "0",
        "",
        " 431",
        "1234567890123456789",
        "12345678901234567890",
        "18446744073709551615",
        "18446744073709551616",
        "4x",
    ];
    const MSECS: &[&str] = &[
        "1767614400.123",
        "1.000",
        "",
        "1767614400.12",
        "999999999999.999",
        "9999999999999.000",
        "x.123",
    ];
    const ADDRESSES: &[&str] = &["127.0.0.1", "2001:db8::7", "", "a|b"];

    fn slow(line: &[u8]) -> Result<Figures, LineError> {
        parse(line).map(|l| Figures::of(&l))
    }

    #[test]
    fn usual_lines_are_read_in_one_pass_to_the_same_figures() {
        for line in [
            &b"kl1|200|0.012|200|0.004|431|1290|1767614400.123|2001:db8::7"[..],
            b"kl1|301|0.000|||87|312|1767614400.000|127.0.0.1",
            b"kl1|503|9.999|503|9.998|1|0|1.000|",
            b"kl1|200|0.001|200|0.001|1234567890123456789|0|999999999999.999|a|b",
        ] {
            let fast = usual_figures(line);
            assert!(fast.is_some(), "{}", String::from_utf8_lossy(line));
            assert_eq!(fast.map(Ok), Some(slow(line)));
            assert_eq!(figures(line), slow(line));
        }
        let f = figures(b"kl1|200|0.012|502|0.004|431|1290|1767614400.123|::1").unwrap();
        assert_eq!(
            f,
            Figures {
                status: Some(200),
                request_time_us: Some(12_000),
                upstream_status: Some(502),
                upstream_time_us: Some(4_000),
                request_length: Some(431),
                bytes_sent: Some(1290),
                now_ms: Some(1_767_614_400_123),
                remote_addr: 48..51,
                request_at: None,
            }
        );
    }

    #[test]
    fn every_mix_of_shapes_reads_as_the_split_line_does() {
        // A random walk over the shapes of every figure, and each line cut
        // short and with a byte changed: the one-pass reading and the long
        // way agree on all of them, errors included.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut fast_taken = 0;
        for _ in 0..20_000 {
            // Each figure nginx's usual shape four times in five, so that
            // whole usual lines come up too.
            let version = ["kl1", "kl2"][next(2)];
            let mut pick = |pool: &[&'static str]| match next(5) {
                0 => pool[next(pool.len())],
                _ => pool[0],
            };
            let fields = [
                version,
                pick(STATUSES),
                pick(TIMES),
                pick(UPSTREAM_STATUSES),
                pick(UPSTREAM_TIMES),
                pick(SIZES),
                pick(SIZES),
                pick(MSECS),
                pick(ADDRESSES),
            ];
            let mut line = fields.join("|").into_bytes();
            if version == "kl2" && next(2) == 0 {
                line.extend_from_slice(b"\nGET\n/a|b?c\nhttps\n\n");
            }
            fast_taken += usize::from(usual_figures(&line).is_some());
            assert_eq!(
                figures(&line),
                slow(&line),
                "{}",
                String::from_utf8_lossy(&line)
            );
            let cut = &line[..next(line.len() + 1)];
            assert_eq!(figures(cut), slow(cut), "{}", String::from_utf8_lossy(cut));
            let mut changed = line.clone();
            if let Some(b) = changed.get_mut(next(line.len().max(1))) {
                *b = [b'|', b'.', b'0', b'9', b' ', b',', b'x'][next(7)];
            }
            assert_eq!(
                figures(&changed),
                slow(&changed),
                "{}",
                String::from_utf8_lossy(&changed)
            );
        }
        // The walk reached the one-pass reading as well as the long way.
        assert!(fast_taken > 100, "{fast_taken}");
        let mut long = b"kl2|".to_vec();
        long.resize(MAX_BYTES + 1, b'1');
        assert_eq!(figures(&long), Err(LineError::TooLong(MAX_BYTES + 1)));
        assert_eq!(figures(b"kl0|200"), Err(LineError::Version));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_size_read_as_a_word_is_the_size_read_a_byte_at_a_time() {
        // What the loop alone gives: 1 to 19 digits and `|`, and the rest.
        let bytewise = |text: &[u8]| -> Option<(u64, usize)> {
            let end = text.iter().take(20).position(|&b| b == b'|')?;
            if end == 0 || !text[..end].iter().all(u8::is_ascii_digit) {
                return None;
            }
            let value = text[..end]
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            Some((value, end + 1))
        };
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for digits in 0..=20usize {
            let number: Vec<u8> = (0..digits).map(|i| b"9081726354"[i % 10]).collect();
            for after in [
                &b""[..],
                b"|",
                b"|1767614400.123|",
                b"|7",
                b"x|",
                b"||||||||",
            ] {
                texts.push([&number[..], after].concat());
            }
        }
        // A byte that is not a digit at each place of a full word.
        for place in 0..8 {
            for bad in [b'/', b':', b' ', b'.', 0, 0x7d, 0xfc, 0xff] {
                let mut text = b"1234567|89".to_vec();
                text[place] = bad;
                texts.push(text);
            }
        }
        for text in texts {
            let mut rest = &text[..];
            let ours = size_field(&mut rest).map(|v| (v, text.len() - rest.len()));
            assert_eq!(ours, bytewise(&text), "{}", String::from_utf8_lossy(&text));
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn eight_digits_read_as_one_word_are_the_digits_read_one_at_a_time() {
        for text in [
            &b"00000000"[..],
            b"12345678",
            b"99999999",
            b"17676144",
            b"90000009",
        ] {
            let one_at_a_time = text.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            assert_eq!(eight_digits(text.try_into().unwrap()), Some(one_at_a_time));
        }
        // Any byte but a digit, in any place.
        for place in 0..8 {
            for bad in [
                b'/', b':', b'?', b'@', b' ', 0, 0x80, 0xb0, 0xff, b'|', b'.',
            ] {
                let mut text = *b"12345678";
                text[place] = bad;
                assert_eq!(eight_digits(&text), None, "{place} {bad:#x}");
            }
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn msec_is_read_exactly_or_not_at_all() {
        assert_eq!(msec_to_ms(b"1.000"), Some(1_000));
        assert_eq!(msec_to_ms(b"999999999999.999"), Some(999_999_999_999_999));
        for bad in [
            &b""[..],
            b".123",
            b"1.12",
            b"1,123",
            b"1.1234",
            b"-1.000",
            b"1x.000",
            b"9999999999999.000",
        ] {
            assert_eq!(msec_to_ms(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_nginx_include_defines_the_variable_in_this_format() {
        let conf = include_str!("../../../kong_looker.nginx.conf");
        let code: Vec<&str> = conf
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert_eq!(
            code,
            [
                &format!("map 1 ${VARIABLE} {{"),
                "volatile;",
                // nginx reads `\n` in a quoted string as a newline.
                &format!("default \"{}\";", FORMAT.replace('\n', "\\n")),
                "}"
            ]
        );
    }

    #[test]
    fn the_property_reads_the_variable() {
        assert_eq!(PROPERTY, format!("ngx.{VARIABLE}"));
    }

    #[test]
    fn the_format_names_every_figure_once_in_the_parsed_order() {
        let (figures, request) = FORMAT.split_once('\n').unwrap();
        assert_eq!(request.split('\n').collect::<Vec<_>>(), REQUEST_FIELDS);
        // The figures are the older format's, under the new version.
        assert_eq!(figures.strip_prefix("kl2|"), FORMAT_V1.strip_prefix("kl1|"));
        let names: Vec<&str> = figures.split('|').collect();
        assert_eq!(names.len(), FIGURES + 2);
        assert_eq!(names[0], "kl2");
        assert_eq!(
            names[1..],
            [
                "$status",
                "$request_time",
                "$upstream_status",
                "$upstream_response_time",
                "$request_length",
                "$bytes_sent",
                "$msec",
                "$remote_addr"
            ]
        );
    }

    #[test]
    fn a_line_with_request_fields_ends_its_figures_at_the_newline() {
        let mut line = b"kl2|200|0.012|200|0.004|431|1290|1767614400.123|2001:db8::7".to_vec();
        let figures_len = line.len();
        let values: Vec<String> = (0..REQUEST_FIELDS.len())
            .map(|i| format!("v{i}|x"))
            .collect();
        for v in &values {
            line.push(b'\n');
            line.extend_from_slice(v.as_bytes());
        }
        let f = figures(&line).unwrap();
        assert_eq!(f, slow(&line).unwrap());
        assert_eq!(&line[f.remote_addr.clone()], b"2001:db8::7");
        assert_eq!(f.request_at, Some(figures_len + 1));
        assert_eq!(f.status, Some(200));
        let at = request_fields(&line, figures_len + 1).unwrap();
        for (range, v) in at.iter().zip(&values) {
            assert_eq!(&line[range.clone()], v.as_bytes());
        }
        // The figures are held to their own length, not the line's.
        let mut long = line.clone();
        long.extend(std::iter::repeat_n(b'a', 3 * MAX_BYTES));
        assert!(figures(&long).is_ok());
    }

    /// The fields as a plain split gives them: the reference the fast
    /// newline scan answers to.
    fn split_plainly(line: &[u8], at: usize) -> Option<Vec<Range<usize>>> {
        let rest = line.get(at..)?;
        let mut start = at;
        let fields: Vec<Range<usize>> = rest
            .split(|&b| b == b'\n')
            .map(|v| {
                let r = start..start + v.len();
                start = r.end + 1;
                r
            })
            .collect();
        (fields.len() == REQUEST_FIELDS.len()).then_some(fields)
    }

    // Run in Wasm too, where the scan is SIMD: each newline is tried at
    // many offsets of a block, in lines of every length around the
    // chunks' edges, with one newline fewer, as many, and more.
    #[wasm_bindgen_test(unsupported = test)]
    fn request_fields_split_as_a_plain_split_does_at_every_length() {
        let n = REQUEST_FIELDS.len();
        for head in [0usize, 1, 5, 15, 16, 17, 31] {
            for newlines in [n - 2, n - 1, n, n + 3] {
                for width in 0..=40usize {
                    for shift in 0..16usize {
                        let mut line = vec![b'x'; head];
                        for i in 0..=newlines {
                            let len = (width + i * shift) % (width + 1);
                            line.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, len));
                            if i < newlines {
                                line.push(b'\n');
                            }
                        }
                        let ours = request_fields(&line, head).map(|f| f.to_vec());
                        assert_eq!(ours, split_plainly(&line, head), "{line:?} from {head}");
                        assert_eq!(ours.is_some(), newlines == n - 1);
                    }
                }
            }
        }
        // Past the end: nothing to split.
        assert_eq!(request_fields(b"kl2|\n", 9), None);
    }

    // In Wasm the scan goes 64 bytes at a time, then 16, then the last 16
    // again: one and two newlines at every offset of lines up to three
    // blocks long, and a line of newlines only.
    #[wasm_bindgen_test(unsupported = test)]
    fn each_newline_finds_every_newline_in_order_at_every_offset() {
        let plainly =
            |line: &[u8]| -> Vec<usize> { (0..line.len()).filter(|&i| line[i] == b'\n').collect() };
        let ours = |line: &[u8]| {
            let mut seen = Vec::new();
            each_newline(line, |at| {
                seen.push(at);
                Some(())
            });
            seen
        };
        for len in 0..=200usize {
            for first in 0..len {
                for second in [
                    None,
                    Some(first + 1),
                    Some(len - 1),
                    Some((first * 7 + 3) % len),
                ] {
                    let mut line = vec![b'a'; len];
                    line[first] = b'\n';
                    if let Some(second) = second.filter(|&s| s < len) {
                        line[second] = b'\n';
                    }
                    assert_eq!(ours(&line), plainly(&line), "{len} {first} {second:?}");
                }
            }
            let all = vec![b'\n'; len];
            assert_eq!(ours(&all), plainly(&all));
        }
        // Stopped at the first `None`.
        let mut calls = 0;
        let stopped = each_newline(&[b'\n'; 100], |_| {
            calls += 1;
            (calls < 70).then_some(())
        });
        assert_eq!((stopped, calls), (None, 70));
    }

    #[test]
    fn request_fields_are_exactly_as_many_as_the_format_has_or_none() {
        let n = REQUEST_FIELDS.len();
        let line = |values: &[&str]| format!("kl2|||||||||\n{}", values.join("\n")).into_bytes();
        let at = b"kl2|||||||||\n".len();
        let empty = vec![""; n];
        let fields = request_fields(&line(&empty), at).unwrap();
        assert!(fields.iter().all(|r| r.is_empty()));
        assert_eq!(fields[n - 1], at + n - 1..at + n - 1);
        // One field short, one too many (a newline inside a value), none.
        assert_eq!(request_fields(&line(&empty[1..]), at), None);
        let mut more = empty.clone();
        more[1] = "/a\nb";
        assert_eq!(request_fields(&line(&more), at), None);
        assert_eq!(request_fields(b"kl2|", 99), None);
        // The figures still read when the request fields do not.
        assert_eq!(figures(&line(&more)).map(|f| f.status), Ok(None));
        // A kl2 line without its request fields has figures only.
        let f = figures(b"kl2|200|0.001|||1|1|1.000|::1").unwrap();
        assert_eq!((f.request_at, f.remote_addr), (None, 26..29));
        // In the older format a newline is the address's, as it was.
        let f = parse(b"kl1|200|0.001|||1|1|1.000|::1\nGET").unwrap();
        assert_eq!((f.request_at, f.remote_addr), (None, 26..33));
    }
}
