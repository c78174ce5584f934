//! A pending batch's signature, worked out ahead of its send a slice at a
//! time. The filter signs on the worker that serves requests: hashing a
//! 100 KB batch in one tick held that worker up for about 1.5 ms, and
//! every request queued behind it waited (`bench/RESULTS.md`, "Cost in
//! Kong's real engine"). In slices of a few blocks per request and a few
//! kilobytes per tick, no request waits for more than a slice.
//!
//! A signature carries its time and the collector refuses one too far from
//! its clock, so one older than [`MAX_AGE_S`] (a batch held back by retries)
//! is worked out again.

use kong_looker_proto::signing::Signer;

/// Age past which a signature is made again before its batch is sent; the
/// collector allows 300 s by default.
pub const MAX_AGE_S: i64 = 60;

/// Where a batch's signature stands.
#[derive(Clone, Debug, Default)]
pub enum Signature {
    /// Not started, or the body changed since.
    #[default]
    None,
    /// Part of the body hashed.
    Partial(Signer),
    /// The header value, and the time it carries.
    Done {
        /// Seconds, as in the header.
        timestamp_s: i64,
        /// The `Authorization` value.
        header: String,
    },
}

impl Signature {
    /// The header value, if the signature is done and fresh at `now_s`.
    pub fn ready(&self, now_s: i64) -> Option<&str> {
        match self {
            Signature::Done {
                timestamp_s,
                header,
            } if fresh(*timestamp_s, now_s) => Some(header),
            _ => None,
        }
    }

    /// Hashes up to `budget` more bytes of `body` with `key`, starting
    /// afresh at `now_s` when nothing fresh is under way; returns how many
    /// bytes it hashed.
    pub fn advance(&mut self, key: &[u8], body: &[u8], budget: usize, now_s: i64) -> usize {
        let signer = match std::mem::take(self) {
            Signature::Partial(s) if fresh(s.timestamp_s(), now_s) => s,
            done @ Signature::Done { .. } if done.ready(now_s).is_some() => {
                *self = done;
                return 0;
            }
            _ => Signer::new(key, now_s),
        };
        let mut signer = signer;
        let hashed = signer.advance(body, budget);
        *self = if signer.is_done(body.len()) {
            Signature::Done {
                timestamp_s: signer.timestamp_s(),
                header: signer.finish(),
            }
        } else {
            Signature::Partial(signer)
        };
        hashed
    }
}

fn fresh(timestamp_s: i64, now_s: i64) -> bool {
    timestamp_s.abs_diff(now_s) <= MAX_AGE_S.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kong_looker_proto::signing::{authorization, verify};
    use wasm_bindgen_test::wasm_bindgen_test;

    const KEY: &[u8] = b"a-signing-key-of-some-length";
    const NOW_S: i64 = 1_767_614_400;

    #[wasm_bindgen_test(unsupported = test)]
    fn slices_add_up_to_the_signature_of_the_whole_body() {
        let body = vec![7u8; 1000];
        let mut s = Signature::default();
        let mut hashed = 0;
        while s.ready(NOW_S).is_none() {
            let n = s.advance(KEY, &body, 128, NOW_S);
            assert!(n <= 128);
            hashed += n;
        }
        assert_eq!(hashed, 1000);
        assert_eq!(
            s.ready(NOW_S + 5),
            Some(authorization(KEY, NOW_S, &body).as_str())
        );
        assert_eq!(verify(KEY, s.ready(NOW_S), &body, NOW_S, 300), Ok(()));
        assert_eq!(s.advance(KEY, &body, 128, NOW_S), 0, "done is done");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_old_signature_is_made_again_with_the_time_of_the_new_start() {
        let body = b"batch bytes";
        let mut s = Signature::default();
        s.advance(KEY, body, 1000, NOW_S);
        assert!(s.ready(NOW_S + MAX_AGE_S).is_some());
        let later = NOW_S + MAX_AGE_S + 1;
        assert!(s.ready(later).is_none(), "too old to send");
        assert_eq!(s.advance(KEY, body, 1000, later), body.len());
        assert_eq!(
            s.ready(later),
            Some(authorization(KEY, later, body).as_str())
        );
        // A half-done one that went stale starts over too.
        let mut s = Signature::default();
        s.advance(KEY, body, 4, NOW_S);
        assert!(matches!(s, Signature::Partial(_)));
        assert_eq!(s.advance(KEY, body, 1000, later), body.len());
        assert_eq!(
            s.ready(later),
            Some(authorization(KEY, later, body).as_str())
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn an_empty_body_is_signed_at_once() {
        let mut s = Signature::default();
        assert_eq!(s.advance(KEY, b"", 0, NOW_S), 0);
        assert_eq!(
            s.ready(NOW_S),
            Some(authorization(KEY, NOW_S, b"").as_str())
        );
    }
}
