//! Batch signatures: the filter signs each body with a key it shares with
//! the collector, so the collector can refuse forged batches, and a
//! timestamp inside the signature lets it refuse old ones replayed.
//!
//! The header is `Authorization: KL1-HMAC-SHA256 t=<unix seconds>,
//! s=<hex>`, where the signature is HMAC-SHA256(key, `<t>` `.` body) in
//! lowercase hex. Replays inside the allowed skew carry a batch key the
//! collector has already committed, so they cost nothing.
//!
//! [`Signer`] works a signature out a slice at a time, for a host that
//! signs on the request path: in Wasm, hashing a 100 KB batch in one go
//! takes about 1.5 ms, and every request queued behind it waits.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The scheme word of the header.
pub const SCHEME: &str = "KL1-HMAC-SHA256";

/// Why a signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    Missing,
    /// Not `KL1-HMAC-SHA256 t=...,s=...`.
    #[error("malformed Authorization header")]
    Malformed,
    /// The timestamp is further from the collector's clock than allowed.
    #[error("stale or future timestamp")]
    Stale,
    /// The signature does not match the body and key.
    #[error("bad signature")]
    Mismatch,
}

impl SignatureError {
    /// A stable code for error bodies and metrics.
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::Missing => "missing_signature",
            SignatureError::Malformed => "malformed_signature",
            SignatureError::Stale => "stale_signature",
            SignatureError::Mismatch => "bad_signature",
        }
    }
}

/// The `Authorization` value for `body` sent at `timestamp_s`.
pub fn authorization(key: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    let mut signer = Signer::new(key, timestamp_s);
    signer.advance(body, body.len());
    signer.finish()
}

/// A signature of one body with one timestamp, hashed a slice at a time:
/// [`Signer::advance`] until [`Signer::is_done`], then [`Signer::finish`].
#[derive(Clone)]
pub struct Signer {
    /// None only for a key that HMAC refuses, which SHA-256's never does.
    mac: Option<Hmac<Sha256>>,
    timestamp_s: i64,
    hashed: usize,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("timestamp_s", &self.timestamp_s)
            .field("hashed", &self.hashed)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signature with `key` for a body sent at `timestamp_s`.
    pub fn new(key: &[u8], timestamp_s: i64) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(key).ok().map(|mut mac| {
            mac.update(timestamp_s.to_string().as_bytes());
            mac.update(b".");
            mac
        });
        Signer {
            mac,
            timestamp_s,
            hashed: 0,
        }
    }

    /// The timestamp the signature carries.
    pub fn timestamp_s(&self) -> i64 {
        self.timestamp_s
    }

    /// Hashes up to `budget` more bytes of `body`, which must be the same
    /// body at every call; returns how many it hashed.
    pub fn advance(&mut self, body: &[u8], budget: usize) -> usize {
        let rest = body.get(self.hashed..).unwrap_or_default();
        let slice = rest.get(..budget).unwrap_or(rest);
        if let Some(mac) = &mut self.mac {
            mac.update(slice);
        }
        self.hashed = self.hashed.saturating_add(slice.len());
        slice.len()
    }

    /// Whether all of a body of `len` bytes is hashed.
    pub fn is_done(&self, len: usize) -> bool {
        self.hashed >= len
    }

    /// The `Authorization` value, for the bytes hashed so far.
    pub fn finish(self) -> String {
        let mut out = format!("{SCHEME} t={},s=", self.timestamp_s);
        if let Some(mac) = self.mac {
            for byte in mac.finalize().into_bytes() {
                out.push_str(&format!("{byte:02x}"));
            }
        }
        out
    }
}

/// Checks a header against `body`, `key` and the reader's clock.
pub fn verify(
    key: &[u8],
    header: Option<&str>,
    body: &[u8],
    now_s: i64,
    max_skew_s: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let rest = header
        .trim()
        .strip_prefix(SCHEME)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or(SignatureError::Malformed)?;
    let (t, s) = rest.split_once(',').ok_or(SignatureError::Malformed)?;
    let t: i64 = t
        .trim()
        .strip_prefix("t=")
        .and_then(|t| t.parse().ok())
        .ok_or(SignatureError::Malformed)?;
    let s = s
        .trim()
        .strip_prefix("s=")
        .ok_or(SignatureError::Malformed)?;
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed);
    }
    let mut sig = [0u8; 32];
    for (out, pair) in sig.iter_mut().zip(s.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).map_err(|_| SignatureError::Malformed)?;
        *out = u8::from_str_radix(pair, 16).map_err(|_| SignatureError::Malformed)?;
    }
    if now_s.abs_diff(t) > max_skew_s.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut signer = Signer::new(key, t);
    signer.advance(body, body.len());
    let mac = signer.mac.ok_or(SignatureError::Mismatch)?;
    // Constant-time comparison.
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const KEY: &[u8] = b"0123456789abcdef0123";

    #[wasm_bindgen_test(unsupported = test)]
    fn signed_bodies_verify() {
        let h = authorization(KEY, 1_764_000_000, b"batch");
        assert!(h.starts_with("KL1-HMAC-SHA256 t=1764000000,s="));
        assert_eq!(verify(KEY, Some(&h), b"batch", 1_764_000_010, 300), Ok(()));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_signature_hashed_in_slices_is_the_one_hashed_at_once() {
        let body: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        for budget in [1, 63, 64, 65, 999, 1000, 5000] {
            let mut signer = Signer::new(KEY, 1_764_000_000);
            let mut turns = 0;
            while !signer.is_done(body.len()) {
                assert!(signer.advance(&body, budget) > 0);
                turns += 1;
            }
            assert_eq!(turns, body.len().div_ceil(budget), "budget {budget}");
            assert_eq!(signer.advance(&body, budget), 0, "nothing left");
            assert_eq!(signer.timestamp_s(), 1_764_000_000);
            assert_eq!(
                signer.finish(),
                authorization(KEY, 1_764_000_000, &body),
                "budget {budget}"
            );
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn forged_stale_and_malformed_are_refused() {
        let h = authorization(KEY, 1_764_000_000, b"batch");
        assert_eq!(
            verify(KEY, Some(&h), b"batcH", 1_764_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another key 12345", Some(&h), b"batch", 1_764_000_000, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(KEY, Some(&h), b"batch", 1_764_000_301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(KEY, None, b"batch", 0, 300),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "Bearer x",
            "KL1-HMAC-SHA256 t=1,s=zz",
            "KL1-HMAC-SHA256 s=00",
        ] {
            assert_eq!(
                verify(KEY, Some(bad), b"batch", 0, 300),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
