//! X.509 subject distinguished names, as nginx prints `$ssl_client_s_dn`
//! (RFC 4514: `CN=app,OU=clients,O=Example\, Inc.,C=US`): the common name,
//! with escapes resolved.

/// Longest DN the parser reads.
pub const MAX_DN_BYTES: usize = 1024;

/// The value of the first `CN` attribute, if any.
pub fn common_name(dn: &str) -> Option<String> {
    let dn = super::cut(dn, MAX_DN_BYTES);
    attributes(dn)
        .find(|(k, _)| k.eq_ignore_ascii_case("CN"))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Splits a DN into (type, value) pairs, honouring backslash escapes.
fn attributes(dn: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let mut rest = dn;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut key = String::new();
        let mut value = String::new();
        let mut in_value = false;
        let mut chars = rest.char_indices();
        let mut end = rest.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        if in_value {
                            value.push(next)
                        } else {
                            key.push(next)
                        }
                    }
                }
                '=' if !in_value => in_value = true,
                ',' | '+' | ';' => {
                    end = i.saturating_add(c.len_utf8());
                    break;
                }
                _ if in_value => value.push(c),
                _ => key.push(c),
            }
        }
        rest = rest.get(end..).unwrap_or("");
        Some((key.trim().to_owned(), value.trim().to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn finds_the_common_name() {
        assert_eq!(
            common_name("CN=app-0001,OU=clients,O=Example Corp,C=US").as_deref(),
            Some("app-0001")
        );
        assert_eq!(
            common_name("O=Example\\, Inc.,CN=svc\\+one").as_deref(),
            Some("svc+one")
        );
        assert_eq!(
            common_name("emailAddress=a@b.c,cn=lower").as_deref(),
            Some("lower")
        );
        assert_eq!(common_name("O=No Name"), None);
        assert_eq!(common_name(""), None);
        assert_eq!(common_name("CN="), None);
        assert!(common_name(&"CN=x,".repeat(10_000)).is_some());
    }
}
