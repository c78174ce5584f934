//! `$kong_looker_log`: the figures of a finished request that nginx
//! otherwise hands a filter one variable at a time, joined into one by a
//! `map` in Kong's nginx config (`kong_looker.nginx.conf`, included with
//! `nginx_http_include`). The filter then reads them in one host call
//! instead of seven and a clock read: in Kong's engine each read costs
//! more than the figure it returns (`bench/RESULTS.md`). This module owns
//! the variable's format and its parser; the capturer decides when to read
//! it, and falls back to the single reads where it is not defined.

/// The variable's name in nginx.
pub const VARIABLE: &str = "kong_looker_log";
/// The property that reads it.
pub const PROPERTY: &str = "ngx.kong_looker_log";

/// What the map gives the variable: a version, then the figures. `|` is in
/// none of them; the client address, the only one that is not a number or
/// a list of numbers, comes last, so it is the rest of the line.
pub const FORMAT: &str = "kl1|$status|$request_time|$upstream_status|$upstream_response_time|\
                          $request_length|$bytes_sent|$msec|$remote_addr";

/// The version the format starts with; another one is not read.
const VERSION: &[u8] = b"kl1";
/// Figures between the version and the client address.
const FIGURES: usize = 7;
/// Longest line accepted: an upstream list of a few retries and an IPv6
/// address fit many times over.
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
    /// Where the client address starts in the line.
    pub remote_addr_at: usize,
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
            LineError::Version => write!(f, "does not start with \"kl1|\""),
            LineError::Fields(n) => {
                write!(f, "{n} fields where the format has {}", FIGURES + 2)
            }
        }
    }
}

/// Splits a line that nginx wrote by [`FORMAT`].
pub fn parse(line: &[u8]) -> Result<LogLine<'_>, LineError> {
    if line.len() > MAX_BYTES {
        return Err(LineError::TooLong(line.len()));
    }
    let mut parts = line.splitn(FIGURES + 2, |&b| b == b'|');
    if parts.next() != Some(VERSION) {
        return Err(LineError::Version);
    }
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
        remote_addr_at: line.len().saturating_sub(address.len()),
    })
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
        assert_eq!(&line[l.remote_addr_at..], b"2001:db8::7");
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
        assert_eq!(&line[l.remote_addr_at..], b"127.0.0.1");
        let line = b"kl1|000||||0|0||";
        let l = parse(line).unwrap();
        assert_eq!((l.now_ms, l.remote_addr_at), (None, line.len()));
    }

    #[test]
    fn another_format_is_refused_by_name() {
        assert_eq!(parse(b""), Err(LineError::Version));
        assert_eq!(
            parse(b"kl2|200|0.001|||1|1|1.000|::1"),
            Err(LineError::Version)
        );
        assert_eq!(parse(b"200 0.001"), Err(LineError::Version));
        let e = parse(b"kl1|200|0.001").unwrap_err();
        assert_eq!(e, LineError::Fields(3));
        assert_eq!(e.to_string(), "3 fields where the format has 9");
        let long = [b'1'; MAX_BYTES + 1];
        assert_eq!(parse(&long), Err(LineError::TooLong(MAX_BYTES + 1)));
    }

    #[test]
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
                &format!("default \"{FORMAT}\";"),
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
        let names: Vec<&str> = FORMAT.split('|').collect();
        assert_eq!(names.len(), FIGURES + 2);
        assert_eq!(names[0].as_bytes(), VERSION);
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
}
