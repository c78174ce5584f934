//! Numbers as Kong shows them to a filter: nginx's seconds with
//! milliseconds (`ngx.request_time`), the upstream time list Kong writes
//! when it retried (`"0.010, 0.020"`, and `" : "` between internal
//! redirects), statuses and sizes. Parsed from bytes, without floating
//! point, and bounded, so any input yields a number or nothing. (Bytes,
//! because checking UTF-8 first cost more than the parse.)

/// Longest text read as one number.
const MAX_NUMBER_BYTES: usize = 32;
/// Longest upstream time list read.
pub const MAX_LIST_BYTES: usize = 1024;
/// Upper bound on any duration: one day, in microseconds.
pub const MAX_DURATION_US: u64 = 86_400_000_000;

/// nginx seconds (`"0.123"`, `"12"`, `"0.5"`) as microseconds.
pub fn seconds_to_us<T: AsRef<[u8]> + ?Sized>(text: &T) -> Option<u64> {
    // This runs twice on every request: whole seconds, then the decimals
    // by their weight, without a state per byte.
    const WEIGHTS: [u64; 6] = [100_000, 10_000, 1_000, 100, 10, 1];
    // nginx writes `%T.%03M`: under ten seconds, one shape.
    if let [
        w @ b'0'..=b'9',
        b'.',
        a @ b'0'..=b'9',
        b @ b'0'..=b'9',
        c @ b'0'..=b'9',
    ] = *text.as_ref()
    {
        let digit = |d: u8| u64::from(d.wrapping_sub(b'0'));
        return Some(
            digit(w)
                .wrapping_mul(1_000_000)
                .wrapping_add(digit(a).wrapping_mul(100_000))
                .wrapping_add(digit(b).wrapping_mul(10_000))
                .wrapping_add(digit(c).wrapping_mul(1_000)),
        );
    }
    let text = text.as_ref().trim_ascii();
    if text.len() > MAX_NUMBER_BYTES {
        return None;
    }
    let (whole, decimals) = match text.iter().position(|&b| b == b'.') {
        Some(at) => (text.get(..at)?, text.get(at.checked_add(1)?..)?),
        None => (text, &[][..]),
    };
    if whole.is_empty() {
        return None;
    }
    // Bounded by comparison rather than checked multiplication: a checked
    // u64 multiply is a 128-bit multiply call on wasm32. Past a day the
    // text is refused anyway, and below that nothing here can overflow.
    const MAX_SECONDS: u64 = MAX_DURATION_US / 1_000_000;
    let mut secs: u64 = 0;
    for &b in whole {
        if !b.is_ascii_digit() || secs > MAX_SECONDS {
            return None;
        }
        secs = secs
            .wrapping_mul(10)
            .wrapping_add(u64::from(b.wrapping_sub(b'0')));
    }
    let mut micros: u64 = 0;
    for (i, &b) in decimals.iter().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        // Past the sixth decimal, digits are checked and dropped. At most
        // 999,999 in all.
        if let Some(weight) = WEIGHTS.get(i) {
            micros = micros.wrapping_add(u64::from(b.wrapping_sub(b'0')).wrapping_mul(*weight));
        }
    }
    // secs is at most ten times MAX_SECONDS plus 9 here.
    let us = secs.wrapping_mul(1_000_000).wrapping_add(micros);
    (us <= MAX_DURATION_US).then_some(us)
}

/// The upstream time: the sum over Kong's attempts. Entries that are not
/// numbers (`-` for an attempt that got no answer) count as zero; `None`
/// when no entry is a number, meaning no upstream answered.
pub fn upstream_us<T: AsRef<[u8]> + ?Sized>(list: &T) -> Option<u64> {
    let list = list.as_ref();
    if list.len() > MAX_LIST_BYTES {
        return None;
    }
    // One upstream try is the common case: no list to split.
    if !list.iter().copied().any(is_separator) {
        return seconds_to_us(list);
    }
    let mut total: Option<u64> = None;
    for entry in list.split(|b| is_separator(*b)) {
        if let Some(us) = seconds_to_us(entry) {
            total = Some(total.unwrap_or(0).saturating_add(us).min(MAX_DURATION_US));
        }
    }
    total
}

/// An HTTP status (100..=999).
pub fn status<T: AsRef<[u8]> + ?Sized>(text: &T) -> Option<u16> {
    let &[a, b, c] = text.as_ref().trim_ascii() else {
        return None;
    };
    let mut value = 0u16;
    for d in [a, b, c] {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value
            .saturating_mul(10)
            .saturating_add(u16::from(d.wrapping_sub(b'0')));
    }
    (100..=999).contains(&value).then_some(value)
}

/// The last status of `ngx.upstream_status` (`"502, 200"` after a retry);
/// `None` when no upstream answered.
pub fn last_upstream_status<T: AsRef<[u8]> + ?Sized>(list: &T) -> Option<u16> {
    let list = list.as_ref();
    if list.len() > MAX_LIST_BYTES {
        return None;
    }
    if !list.iter().copied().any(is_separator) {
        return status(list);
    }
    list.rsplit(|b| is_separator(*b)).find_map(status)
}

/// What separates nginx's per-try values: `,` between tries, `:` between
/// upstream groups after an internal redirect.
fn is_separator(b: u8) -> bool {
    b == b',' || b == b':'
}

/// A byte count.
pub fn size<T: AsRef<[u8]> + ?Sized>(text: &T) -> Option<u64> {
    let text = text.as_ref().trim_ascii();
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    text.iter().try_fold(0u64, |n, &d| {
        // Compared, not a checked multiply (a 128-bit call on wasm32).
        if !d.is_ascii_digit() || n > u64::MAX / 10 {
            return None;
        }
        n.wrapping_mul(10)
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    })
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
/// unless it is all zeros.
pub fn trace_id<T: AsRef<[u8]> + ?Sized>(traceparent: &T) -> Option<&str> {
    let mut parts = traceparent.as_ref().trim_ascii().split(|b| *b == b'-');
    let version = parts.next()?;
    let id = parts.next()?;
    let parent = parts.next()?;
    let is_hex = |s: &[u8], n: usize| s.len() == n && s.iter().all(u8::is_ascii_hexdigit);
    if !is_hex(version, 2) || version == b"ff" || !is_hex(id, 32) || !is_hex(parent, 16) {
        return None;
    }
    if id.iter().all(|b| *b == b'0') {
        return None;
    }
    // Hex digits: the check cannot fail.
    core::str::from_utf8(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn nginx_seconds() {
        assert_eq!(seconds_to_us("0.000"), Some(0));
        assert_eq!(seconds_to_us("0.123"), Some(123_000));
        assert_eq!(seconds_to_us("12"), Some(12_000_000));
        assert_eq!(seconds_to_us(" 1.5 "), Some(1_500_000));
        assert_eq!(seconds_to_us("0.0000019"), Some(1));
        for bad in [
            "",
            "-",
            "-1",
            "1e3",
            ".5",
            "1.2.3",
            "0x10",
            "99999999999999999999",
        ] {
            assert_eq!(seconds_to_us(bad), None, "{bad}");
        }
        assert_eq!(seconds_to_us("86401"), None);
        assert_eq!(seconds_to_us("86400"), Some(MAX_DURATION_US));
        assert_eq!(seconds_to_us("86400.000001"), None);
        assert_eq!(
            seconds_to_us("000000000000086399.999999"),
            Some(MAX_DURATION_US - 1)
        );
        assert_eq!(seconds_to_us("864009.5"), None);
        assert_eq!(seconds_to_us("1."), Some(1_000_000));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn nginx_shape_reads_as_the_general_reading_does() {
        // A leading space takes the general path.
        for ms in 0..10_000 {
            let text = format!("{}.{:03}", ms / 1000, ms % 1000);
            assert_eq!(seconds_to_us(&text), Some(ms * 1000), "{text}");
            assert_eq!(seconds_to_us(&text), seconds_to_us(&format!(" {text}")));
        }
        for near in ["0.0a0", "a.000", "0,000", "0.00", "0.0000", "00.00"] {
            assert_eq!(
                seconds_to_us(near),
                seconds_to_us(&format!(" {near}")),
                "{near}"
            );
        }
    }

    /// The one-pass reader agrees with the plain reading (split at the
    /// point, both sides digits, six decimals kept) on every string of up
    /// to five characters from digits, a point, a space and a sign.
    #[test]
    fn one_pass_seconds_agree_with_the_plain_reading() {
        fn plain(text: &str) -> Option<u64> {
            let text = text.trim_ascii();
            let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            if whole.is_empty() || !digits(whole) || !digits(frac) {
                return None;
            }
            let secs: u64 = whole.parse().ok()?;
            let mut micros = 0;
            let mut scale = 100_000;
            for d in frac.bytes().take(6) {
                micros += u64::from(d - b'0') * scale;
                scale /= 10;
            }
            let us = secs.checked_mul(1_000_000)?.checked_add(micros)?;
            (us <= MAX_DURATION_US).then_some(us)
        }
        let alphabet = ['0', '1', '9', '.', ' ', '-'];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(longer);
        }
        texts.push("0.1234567".into());
        texts.push("86400.0000001".into());
        for t in &texts {
            assert_eq!(seconds_to_us(t), plain(t), "{t:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn upstream_retries_are_summed() {
        assert_eq!(upstream_us("0.010"), Some(10_000));
        assert_eq!(upstream_us("0.010, 0.020"), Some(30_000));
        assert_eq!(upstream_us("0.010, - : 0.005"), Some(15_000));
        assert_eq!(upstream_us("-"), None);
        assert_eq!(upstream_us(""), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn statuses_and_sizes() {
        assert_eq!(status("200"), Some(200));
        assert_eq!(status("2000"), None);
        assert_eq!(status("099"), None);
        assert_eq!(last_upstream_status("502, 200"), Some(200));
        assert_eq!(last_upstream_status("-"), None);
        assert_eq!(size("1234"), Some(1234));
        assert_eq!(size("-1"), None);
        assert_eq!(size("123456789012345678901"), None);
        assert_eq!(size("18446744073709551615"), Some(u64::MAX));
        assert_eq!(size("18446744073709551616"), None);
        assert_eq!(size("99999999999999999999"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn traceparent() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(trace_id(&format!("00-{id}-00f067aa0ba902b7-01")), Some(id));
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id("00-xyz-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id(""), None);
    }
}
