//! Path templates: the request path with its query dropped and every
//! segment that looks like an identifier replaced by `{id}`, so that
//! `/orders/8412/items?x=1` and `/orders/77/items` both count as
//! `/orders/{id}/items`. Operators can set templates per route prefix, and
//! the number of distinct templates per worker is capped: paths past the cap
//! become `{other}` and are counted.

use kong_looker_proto::bytes::{Key, Query};

/// The templates seen: hashbrown's set, which finds or inserts a template
/// in one lookup, by a key that hashes and compares it a word at a time.
type Seen = hashbrown::HashSet<Key<str>, foldhash::fast::FixedState>;

/// Longest path the templater looks at, in bytes; the rest is ignored.
pub const MAX_PATH_BYTES: usize = 2048;
/// Most segments kept; deeper paths end in `/{more}`.
pub const MAX_SEGMENTS: usize = 24;
/// The template that stands for every path past the cardinality cap.
pub const OTHER: &str = "{other}";

/// One configured rule: paths starting with `prefix` get `template`.
pub use crate::config::TemplateConfig as PrefixRule;

/// Templates paths for one worker, remembering which templates it has seen.
#[derive(Clone, Debug)]
pub struct PathTemplater {
    rules: Vec<PrefixRule>,
    seen: Seen,
    max_templates: usize,
    overflowed: u64,
    /// The generic template being built, kept for its capacity.
    scratch: String,
}

impl PathTemplater {
    /// A templater with configured prefix rules (longest prefix wins) and a
    /// cap on distinct templates. Clients choose the paths, so the set of
    /// templates seen hashes with `seed`, the instance's own random one.
    pub fn new(mut rules: Vec<PrefixRule>, max_templates: usize, seed: u64) -> Self {
        rules.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        PathTemplater {
            rules,
            seen: Seen::with_hasher(foldhash::fast::FixedState::with_seed(seed)),
            max_templates,
            overflowed: 0,
            scratch: String::new(),
        }
    }

    /// The template for `raw` (a request path, query string allowed),
    /// borrowed from the set of templates seen: a template met before
    /// costs no allocation.
    pub fn template(&mut self, raw: &str) -> &str {
        self.template_unless(raw, |_| false)
    }

    /// [`PathTemplater::template`], but a template that `admitted` says
    /// has passed through this templater before comes as it was made,
    /// without a lookup in the set of templates seen (three reads from far
    /// memory when the set is large). `admitted` must say so only of a
    /// template this templater has returned before: it never forgets one,
    /// so that one is in the set, and was not `{other}`.
    pub fn template_unless(&mut self, raw: &str, admitted: impl FnOnce(&str) -> bool) -> &str {
        let path = strip_query(raw);
        let candidate = match self
            .rules
            .iter()
            .find(|r| path.starts_with(r.prefix.as_str()))
        {
            Some(rule) => rule.template.as_str(),
            None => {
                generic_template_into(path, &mut self.scratch);
                self.scratch.as_str()
            }
        };
        if admitted(candidate) {
            return candidate;
        }
        let query = Query(candidate.as_bytes());
        if self.seen.len() >= self.max_templates && !self.seen.contains(&query) {
            self.overflowed = self.overflowed.saturating_add(1);
            return OTHER;
        }
        &self
            .seen
            .get_or_insert_with(&query, |_| Key(Box::from(candidate)))
            .0
    }

    /// Paths recorded as `{other}` so far.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Takes the count of paths past the cap back to `mark`, an earlier
    /// [`PathTemplater::overflowed`]: for a record templated again because
    /// its first assembly was refused, whose path counts once.
    pub fn rewind_overflowed(&mut self, mark: u64) {
        self.overflowed = self.overflowed.min(mark);
    }

    /// Distinct templates seen.
    pub fn distinct(&self) -> usize {
        self.seen.len()
    }
}

/// The path without query string or fragment, at most [`MAX_PATH_BYTES`].
fn strip_query(raw: &str) -> &str {
    // Bytes, not chars: both marks are ASCII. memchr's word-at-a-time
    // search cost half of a loop over the bytes.
    let end = memchr::memchr2(b'?', b'#', raw.as_bytes()).unwrap_or(raw.len());
    let path = raw.get(..end).unwrap_or("");
    super::cut(path, MAX_PATH_BYTES)
}

/// Replaces identifier-like segments with `{id}`.
pub fn generic_template(path: &str) -> String {
    let mut out = String::with_capacity(path.len().min(256));
    generic_template_into(path, &mut out);
    out
}

/// [`generic_template`] into `out`, replacing what it held. The path is
/// copied in runs, from one identifier to the next, not a segment at a
/// time: in Wasm each copy is a call into the engine (`memory.copy`).
fn generic_template_into(path: &str, out: &mut String) {
    out.clear();
    if !path.starts_with('/') {
        out.push('/');
    }
    let len = path.len();
    let marks = Marks::of(path.as_bytes());
    // `path[copied..]` is not yet in `out`; `start` is the segment's.
    let mut copied = 0;
    let mut start = 0;
    for i in 0.. {
        let end = match &marks {
            Some(marks) => marks.slash_from(start),
            // Segments found by a byte scan: `split('/')` searched with
            // memchr, whose setup cost more than the few bytes of a segment.
            None => path
                .as_bytes()
                .get(start..)
                .unwrap_or_default()
                .iter()
                .position(|&b| b == b'/')
                .map(|at| start.saturating_add(at)),
        }
        .unwrap_or(len);
        if i > MAX_SEGMENTS {
            // Up to the slash before this segment.
            push_run(out, path, copied, start.saturating_sub(1));
            out.push_str("/{more}");
            copied = len;
            break;
        }
        let identifier = match &marks {
            Some(marks) if end.saturating_sub(start) < Marks::SHORT => marks.digits(start, end),
            _ => is_identifier(path.get(start..end).unwrap_or_default()),
        };
        if identifier {
            push_run(out, path, copied, start);
            out.push_str("{id}");
            copied = end;
        }
        if end >= len {
            break;
        }
        start = end.saturating_add(1);
    }
    push_run(out, path, copied, len);
    if out.is_empty() {
        out.push('/');
    }
}

/// Where a path of at most 64 bytes has slashes and digits, a bit a byte:
/// each segment's end and whether it is a number are then a shift and a
/// mask, where the scan went a byte at a time, once for the segment's end
/// and again for its digits. With Wasm SIMD the marks take a few
/// instructions for sixteen bytes (some 100 to 170 fewer a request in
/// Kong's engine, `bench/RESULTS.md`).
struct Marks {
    slash: u64,
    digit: u64,
}

impl Marks {
    /// Below this length a segment is an identifier only as a number: a
    /// UUID, a hex string and a token are all longer.
    const SHORT: usize = 16;

    /// The marks of `path`; `None` past 64 bytes, and natively, where the
    /// byte loop cost 130 instructions a request more than the scans it
    /// replaces (the unit tests take it natively all the same).
    fn of(path: &[u8]) -> Option<Marks> {
        const MARKED: bool = cfg!(any(
            test,
            all(target_arch = "wasm32", target_feature = "simd128")
        ));
        if !MARKED || path.len() > 64 {
            return None;
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        if let Some(last) = path.last_chunk::<16>() {
            return Some(Marks::of_lanes(path, last));
        }
        Some(Marks::of_bytes(path))
    }

    /// A byte at a time, for at most 64 bytes.
    fn of_bytes(path: &[u8]) -> Marks {
        let mut marks = Marks { slash: 0, digit: 0 };
        for (i, &b) in path.iter().take(64).enumerate() {
            marks.slash |= u64::from(b == b'/') << i;
            marks.digit |= u64::from(b.is_ascii_digit()) << i;
        }
        marks
    }

    /// Sixteen bytes at a time, for 16 to 64 bytes, `last` being the last
    /// sixteen.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    fn of_lanes(path: &[u8], last: &[u8; 16]) -> Marks {
        use core::arch::wasm32::{
            u8x16_bitmask, u8x16_eq, u8x16_le, u8x16_splat, u8x16_sub, v128, v128_load,
        };
        let (slash, zero, nine) = (u8x16_splat(b'/'), u8x16_splat(b'0'), u8x16_splat(9));
        let lanes = |chunk: &[u8; 16]| {
            // SAFETY: `chunk` is sixteen readable bytes, and `v128_load`
            // reads exactly those, at any alignment.
            #[allow(unsafe_code)]
            let v = unsafe { v128_load(chunk.as_ptr().cast::<v128>()) };
            (
                u64::from(u8x16_bitmask(u8x16_eq(v, slash))),
                u64::from(u8x16_bitmask(u8x16_le(u8x16_sub(v, zero), nine))),
            )
        };
        let mut marks = Marks { slash: 0, digit: 0 };
        let (chunks, _) = path.as_chunks::<16>();
        for (i, chunk) in chunks.iter().take(4).enumerate() {
            let (s, d) = lanes(chunk);
            marks.slash |= s << (i.wrapping_mul(16) & 63);
            marks.digit |= d << (i.wrapping_mul(16) & 63);
        }
        // The last sixteen overlap what the whole chunks marked; or-ing
        // the same bits again is harmless.
        let at = path.len().wrapping_sub(16) & 63;
        let (s, d) = lanes(last);
        marks.slash |= s << at;
        marks.digit |= d << at;
        marks
    }

    /// The first slash at or after `start`.
    #[inline]
    fn slash_from(&self, start: usize) -> Option<usize> {
        let rest = self.slash.checked_shr(start as u32).unwrap_or(0);
        (rest != 0).then(|| start.wrapping_add(rest.trailing_zeros() as usize))
    }

    /// Whether `start..end`, shorter than [`Marks::SHORT`], is a number.
    #[inline]
    fn digits(&self, start: usize, end: usize) -> bool {
        let n = end.wrapping_sub(start);
        let want = (1u64 << (n & 15)).wrapping_sub(1);
        n > 0 && self.digit.checked_shr(start as u32).unwrap_or(0) & want == want
    }
}

/// Appends `path[from..to]`, if any: an empty copy is still a call.
fn push_run(out: &mut String, path: &str, from: usize, to: usize) {
    if from < to {
        out.push_str(path.get(from..to).unwrap_or_default());
    }
}

/// Whether a segment looks like an identifier rather than a resource name:
/// a number, a UUID, a long hex string, or a long base64-like token.
pub fn is_identifier(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    if bytes.iter().all(u8::is_ascii_digit) {
        return true;
    }
    if is_uuid(bytes) {
        return true;
    }
    if bytes.len() >= 16 && bytes.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    is_token(bytes)
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Base64 or base64url-like: at least 20 characters from that alphabet,
/// with digits and letters mixed, as opaque tokens and ids are. Words with
/// hyphens (`order-history-archive`) are not, because they have no digits.
fn is_token(b: &[u8]) -> bool {
    if b.len() < 20 {
        return false;
    }
    let alphabet = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'=' | b'+' | b'.'));
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
    alphabet && digits >= 2 && letters >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn t(path: &str) -> String {
        PathTemplater::new(Vec::new(), 100, 7)
            .template(path)
            .to_string()
    }

    /// Templating a segment at a time, as the code first did: what the
    /// run-copying one must match.
    fn by_segments(path: &str) -> String {
        let mut out = String::new();
        if !path.starts_with('/') {
            out.push('/');
        }
        for (i, segment) in path.split('/').enumerate() {
            if i > MAX_SEGMENTS {
                out.push_str("/{more}");
                break;
            }
            if i > 0 {
                out.push('/');
            }
            out.push_str(if is_identifier(segment) {
                "{id}"
            } else {
                segment
            });
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn runs_are_copied_as_segments_would_be() {
        let parts = [
            "",
            "a",
            "orders",
            "8412",
            "v1",
            "ü",
            "0f1a4101-3327-4274-b1e4-484a4ab0c030",
            "{x}",
        ];
        let mut paths = vec![String::new()];
        for a in parts {
            for b in parts {
                for c in parts {
                    for lead in ["", "/"] {
                        paths.push(format!("{lead}{a}/{b}/{c}"));
                        paths.push(format!("{lead}{a}/{b}//{c}/"));
                    }
                }
            }
        }
        for n in [
            MAX_SEGMENTS - 1,
            MAX_SEGMENTS,
            MAX_SEGMENTS + 1,
            MAX_SEGMENTS + 2,
            60,
        ] {
            paths.push("/7".repeat(n));
            paths.push("/a".repeat(n));
            paths.push(format!("x{}", "/7/b".repeat(n)));
        }
        for path in &paths {
            assert_eq!(generic_template(path), by_segments(path), "{path:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn marks_agree_with_the_bytes_at_every_length() {
        // Every byte of the alphabet at every position of every length up
        // to 64, on a background of letters and of digits: the lanes (in
        // Wasm) must mark what a byte at a time marks.
        for len in 0..=64usize {
            for background in [b'a', b'7'] {
                for at in 0..len {
                    for b in [b'/', b'0', b'9', b'/' - 1, b'9' + 1, b'a', 0x80, 0xff, 0] {
                        let mut path = vec![background; len];
                        path[at] = b;
                        let marks = Marks::of(&path).unwrap();
                        let bytes = Marks::of_bytes(&path);
                        assert_eq!((marks.slash, marks.digit), (bytes.slash, bytes.digit));
                        let want_digit = path
                            .iter()
                            .enumerate()
                            .fold(0u64, |m, (i, c)| m | u64::from(c.is_ascii_digit()) << i);
                        assert_eq!(marks.digit, want_digit, "{path:?}");
                    }
                }
            }
        }
        assert!(Marks::of(&[b'/'; 65]).is_none());
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn templates_by_marks_are_those_of_the_segments() {
        // Paths up to 70 bytes from slashes, digits, letters and a
        // two-byte character, so that segments of every length up to and
        // past sixteen, numbers and not, end at every offset.
        let pieces = [
            "/",
            "/",
            "1",
            "2",
            "9",
            "a",
            "z",
            "-",
            "é",
            "/0",
            "/12345678",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut path = String::new();
            let target = (state % 71) as usize;
            while path.len() < target {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                path.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            assert_eq!(generic_template(&path), by_segments(&path), "{path:?}");
        }
        for n in 1..=20 {
            let digits = "3".repeat(n);
            assert_eq!(generic_template(&format!("/a/{digits}/b")), "/a/{id}/b");
            let hex = "ab".repeat(n);
            assert_eq!(
                generic_template(&format!("/a/{hex}")),
                by_segments(&format!("/a/{hex}")),
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn identifiers_become_id_and_the_query_is_dropped() {
        assert_eq!(t("/orders/8412/items?token=secret"), "/orders/{id}/items");
        assert_eq!(
            t("/users/0f1a4101-3327-4274-b1e4-484a4ab0c030"),
            "/users/{id}"
        );
        assert_eq!(t("/blobs/5f2b8c1e9a7d4e3f2b1a0c9d"), "/blobs/{id}");
        assert_eq!(t("/s/aGVsbG8gd29ybGQgMTIzNDU2Nzg"), "/s/{id}");
        assert_eq!(
            t("/v1/order-history-archive/list"),
            "/v1/order-history-archive/list"
        );
        assert_eq!(t("/v2/items#frag"), "/v2/items");
        assert_eq!(t(""), "/");
        assert_eq!(t("/"), "/");
        assert_eq!(t("no-slash"), "/no-slash");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn configured_prefixes_win_longest_first() {
        let rules = vec![
            PrefixRule {
                prefix: "/v1/".into(),
                template: "/v1/*".into(),
            },
            PrefixRule {
                prefix: "/v1/users/".into(),
                template: "/v1/users/{user}".into(),
            },
        ];
        let mut p = PathTemplater::new(rules, 10, 7);
        assert_eq!(p.template("/v1/users/alice"), "/v1/users/{user}");
        assert_eq!(p.template("/v1/things"), "/v1/*");
        assert_eq!(p.template("/v2/things"), "/v2/things");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cardinality_is_capped_and_overflow_counted() {
        let mut p = PathTemplater::new(Vec::new(), 2, 7);
        assert_eq!(p.template("/a"), "/a");
        assert_eq!(p.template("/b"), "/b");
        assert_eq!(p.template("/c"), OTHER);
        assert_eq!(p.template("/a?x"), "/a", "known templates still pass");
        assert_eq!((p.distinct(), p.overflowed()), (2, 1));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_template_said_to_be_admitted_skips_the_set() {
        let mut p = PathTemplater::new(Vec::new(), 2, 7);
        assert_eq!(p.template("/a/1"), "/a/{id}");
        let mut asked = Vec::new();
        let t = p.template_unless("/a/2?q", |c| {
            asked.push(c.to_owned());
            true
        });
        assert_eq!(t, "/a/{id}");
        assert_eq!(asked, ["/a/{id}"], "asked once, of the template");
        // Not admitted: looked up, and added or refused as by `template`.
        assert_eq!(p.template_unless("/b", |_| false), "/b");
        assert_eq!(p.template_unless("/c", |_| false), OTHER);
        assert_eq!((p.distinct(), p.overflowed()), (2, 1));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn huge_and_deep_paths_are_bounded() {
        let deep = "/x".repeat(10_000);
        let out = t(&deep);
        assert!(out.ends_with("/{more}"));
        assert!(out.len() < 100);
        let long = format!("/{}", "é".repeat(40_000));
        assert!(t(&long).len() <= MAX_PATH_BYTES + 1);
    }

    /// The segments as `split('/')` gives them, which the byte scan
    /// replaced.
    fn by_split(path: &str) -> String {
        let mut out = String::from(if path.starts_with('/') { "" } else { "/" });
        for (i, segment) in path.split('/').enumerate() {
            if i > MAX_SEGMENTS {
                out.push_str("/{more}");
                break;
            }
            if i > 0 {
                out.push('/');
            }
            out.push_str(if is_identifier(segment) {
                "{id}"
            } else {
                segment
            });
        }
        if out.is_empty() { "/".into() } else { out }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn segments_are_those_of_a_split_on_slashes() {
        let deep = "/a".repeat(MAX_SEGMENTS + 3);
        let exact = "/a".repeat(MAX_SEGMENTS);
        for path in [
            "",
            "/",
            "//",
            "a",
            "a/",
            "/a",
            "/a/",
            "a//b",
            "/a//b/",
            "///",
            "/é/ü/123",
            "/orders/8412/items",
            "x/123/",
            &deep,
            &exact,
        ] {
            assert_eq!(generic_template(path), by_split(path), "{path:?}");
        }
    }
}
