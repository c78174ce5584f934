//! Batch signatures: the filter signs each body with a key it shares with
//! the collector, so the collector can refuse forged batches, and a
//! timestamp inside the signature lets it refuse old ones replayed.
//!
//! The header is `Authorization: KL1-HMAC-SHA256 t=<unix seconds>,
//! s=<hex>`, where the signature is HMAC-SHA256(key, `<t>` `.` body) in
//! lowercase hex. Replays inside the allowed skew carry a batch key the
//! collector has already committed, so they cost nothing.

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

fn mac(key: &[u8], timestamp_s: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `Authorization` value for `body` sent at `timestamp_s`.
pub fn authorization(key: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    let mut out = format!("{SCHEME} t={timestamp_s},s=");
    if let Some(mac) = mac(key, timestamp_s, body) {
        for byte in mac.finalize().into_bytes() {
            out.push_str(&format!("{byte:02x}"));
        }
    }
    out
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
    let mac = mac(key, t, body).ok_or(SignatureError::Mismatch)?;
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
