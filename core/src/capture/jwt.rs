//! JWT and OIDC bearer tokens: the claims that identify the caller, read
//! from the payload without verifying the signature (Kong's jwt and
//! openid-connect plugins verify; the filter only records). The token and
//! its signature are never kept.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Longest token the parser decodes; bigger ones are not read.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Longest claim value kept.
pub const MAX_CLAIM_BYTES: usize = 512;
/// Most groups kept from the groups claim.
pub const MAX_GROUPS: usize = 32;

/// The identifying claims of a token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    /// `sub`.
    pub subject: Option<String>,
    /// `iss`.
    pub issuer: Option<String>,
    /// The client application: `azp`, `client_id`, `cid` or `appid`, the
    /// first present (Auth0, Keycloak and Okta, Okta, Azure AD).
    pub client_id: Option<String>,
    /// Groups from the configured claim: an array of strings, or a string
    /// of space- or comma-separated names.
    pub groups: Vec<String>,
    /// Whether the token looks like an OAuth 2.0 / OIDC access or ID token
    /// (an issuer and a client id) rather than a plain JWT.
    pub oidc: bool,
}

/// Why a token was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtError {
    /// Over [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// Not three dot-separated parts.
    NotAJwt,
    /// The payload is not base64url.
    BadEncoding,
    /// The payload is not a JSON object (or is nested too deeply).
    BadJson,
}

/// The token of an `Authorization: Bearer ...` value, if it is one.
pub fn bearer(header: &str) -> Option<&str> {
    let rest = header.trim_start();
    let token = rest
        .strip_prefix("Bearer ")
        .or_else(|| rest.strip_prefix("bearer "))?;
    Some(token.trim())
}

/// Decodes a token's claims; `groups_claim` names the claim holding groups.
pub fn claims(token: &str, groups_claim: &str) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotAJwt);
    };
    let json = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| JwtError::BadEncoding)?;
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&json) else {
        return Err(JwtError::BadJson);
    };
    let text = |key: &str| map.get(key).and_then(claim_text);
    let client_id = ["azp", "client_id", "cid", "appid"]
        .iter()
        .find_map(|k| text(k));
    let issuer = text("iss");
    let groups = match map.get(groups_claim) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(claim_text)
            .take(MAX_GROUPS)
            .collect(),
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|g| !g.is_empty())
            .take(MAX_GROUPS)
            .map(bounded)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Claims {
        subject: text("sub"),
        oidc: issuer.is_some() && client_id.is_some(),
        issuer,
        client_id,
        groups,
    })
}

/// A claim as text: strings as they are, numbers printed; bounded.
fn claim_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(bounded(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn bounded(s: &str) -> String {
    super::cut(s, MAX_CLAIM_BYTES).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn token(payload: &str) -> String {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.c2lnbmF0dXJl",
            enc(r#"{"alg":"RS256"}"#),
            enc(payload)
        )
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn okta_auth0_keycloak_and_azure_shapes() {
        let okta = claims(&token(r#"{"sub":"00u1abcd","iss":"https://example.okta.com/oauth2/default","cid":"0oa9xyz","groups":["gold","partners"]}"#), "groups").unwrap();
        assert_eq!(okta.subject.as_deref(), Some("00u1abcd"));
        assert_eq!(okta.client_id.as_deref(), Some("0oa9xyz"));
        assert_eq!(okta.groups, ["gold", "partners"]);
        assert!(okta.oidc);
        let auth0 = claims(
            &token(r#"{"sub":"auth0|42","iss":"https://x.eu.auth0.com/","azp":"abc"}"#),
            "groups",
        )
        .unwrap();
        assert_eq!(auth0.client_id.as_deref(), Some("abc"));
        let keycloak = claims(
            &token(r#"{"sub":"u","iss":"https://kc/realms/r","client_id":"svc","roles":"a b,c"}"#),
            "roles",
        )
        .unwrap();
        assert_eq!(keycloak.groups, ["a", "b", "c"]);
        let azure = claims(
            &token(
                r#"{"sub":"s","iss":"https://login.microsoftonline.com/t/v2.0","appid":"app-1"}"#,
            ),
            "groups",
        )
        .unwrap();
        assert_eq!(azure.client_id.as_deref(), Some("app-1"));
        let plain = claims(&token(r#"{"sub":"user-1","iss":"key-1"}"#), "groups").unwrap();
        assert!(!plain.oidc);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn malformed_tokens_are_errors_not_panics() {
        assert_eq!(claims("abc", "groups"), Err(JwtError::NotAJwt));
        assert_eq!(claims("a.b.c.d", "groups"), Err(JwtError::NotAJwt));
        assert_eq!(claims("a.!!!.c", "groups"), Err(JwtError::BadEncoding));
        assert_eq!(claims(&token("[1,2]"), "groups"), Err(JwtError::BadJson));
        assert_eq!(
            claims(&token(&"[".repeat(5000)), "groups"),
            Err(JwtError::BadJson)
        );
        assert_eq!(
            claims(&"a".repeat(MAX_TOKEN_BYTES + 1), "groups"),
            Err(JwtError::TooLarge)
        );
        let many: String = (0..10_000).map(|i| format!("\"c{i}\":1,")).collect();
        let big = token(&format!("{{{many}\"sub\":\"x\"}}"));
        assert!(
            big.len() > MAX_TOKEN_BYTES,
            "10,000 claims are over the limit and not read"
        );
        assert_eq!(claims(&big, "groups"), Err(JwtError::TooLarge));
        assert_eq!(bearer("Bearer  tok "), Some("tok"));
        assert_eq!(bearer("Basic x"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn long_claims_and_group_lists_are_bounded() {
        let groups: Vec<String> = (0..100).map(|i| format!("\"g{i}\"")).collect();
        let c = claims(
            &token(&format!(
                r#"{{"sub":"{}","groups":[{}]}}"#,
                "s".repeat(2000),
                groups.join(",")
            )),
            "groups",
        )
        .unwrap();
        assert_eq!(c.subject.unwrap().len(), MAX_CLAIM_BYTES);
        assert_eq!(c.groups.len(), MAX_GROUPS);
    }
}
