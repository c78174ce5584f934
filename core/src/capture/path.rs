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
    // `path[copied..]` is not yet in `out`; `start` is the segment's.
    let mut copied = 0;
    let mut start = 0;
    // Segments found by a byte scan: `split('/')` searched with memchr,
    // whose setup cost more than the few bytes of a segment.
    for i in 0.. {
        let rest = path.as_bytes().get(start..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'/')
            .map_or(len, |at| start.saturating_add(at));
        if i > MAX_SEGMENTS {
            // Up to the slash before this segment.
            push_run(out, path, copied, start.saturating_sub(1));
            out.push_str("/{more}");
            copied = len;
            break;
        }
        if is_identifier(path.get(start..end).unwrap_or_default()) {
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
