//! HTTP Basic authentication: the user name only. The password is decoded
//! into a buffer that is dropped at once and never copied out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Longest credential the parser decodes.
pub const MAX_CREDENTIAL_BYTES: usize = 1024;
/// Longest user name kept.
pub const MAX_USER_BYTES: usize = 256;

/// The user name of an `Authorization: Basic ...` header value.
pub fn username(header: &str) -> Option<String> {
    let encoded = header.trim_start().strip_prefix("Basic ")?.trim();
    if encoded.is_empty() || encoded.len() > MAX_CREDENTIAL_BYTES {
        return None;
    }
    let decoded = STANDARD.decode(encoded).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(decoded.get(..colon)?).ok()?;
    (!user.is_empty() && user.len() <= MAX_USER_BYTES && !user.chars().any(char::is_control))
        .then(|| user.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn keeps_the_user_only() {
        // "aladdin:opensesame"
        assert_eq!(
            username("Basic YWxhZGRpbjpvcGVuc2VzYW1l").as_deref(),
            Some("aladdin")
        );
        assert_eq!(username("Basic OnBhc3N3b3Jk"), None, "empty user");
        assert_eq!(username("Basic bm9jb2xvbg=="), None, "no colon");
        assert_eq!(username("Basic !!!"), None);
        assert_eq!(username("Bearer YWxhZGRpbjpvcGVuc2VzYW1l"), None);
        assert_eq!(username(&format!("Basic {}", "QUFB".repeat(1000))), None);
    }
}
