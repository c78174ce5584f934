//! Where a chain's batches go and how each call is made: the collector
//! address, the Host header, TLS, the signing key, and the headers of one
//! signed `POST /v1/batches`. Every host builds its calls here; only the
//! sending is its own.

use kong_looker_proto::{signing, wire};

use crate::config::Config;

/// A collector destination. Chains with equal destinations share one
/// outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// The collector: `ip:port`, `host:port`, `[v6]:port` or `unix:/path`.
    pub upstream: String,
    /// Host header and TLS server name.
    pub authority: String,
    /// HTTPS.
    pub tls: bool,
    /// Signing key; empty for none.
    pub signing_key: String,
}

impl Destination {
    /// A config's destination.
    pub fn of(config: &Config) -> Self {
        let authority = if !config.collector_host.is_empty() {
            config.collector_host.clone()
        } else if config.collector.starts_with("unix:") {
            "localhost".into()
        } else {
            config.collector.clone()
        };
        Destination {
            upstream: config.collector.clone(),
            authority,
            tls: config.tls,
            signing_key: config.signing_key.clone(),
        }
    }

    /// The headers of the call that sends `body` at `now_ms`: method, path
    /// and authority as pseudo-headers, the content type, the scheme when
    /// TLS, and the signature when the destination has a key.
    pub fn batch_headers(&self, body: &[u8], now_ms: i64) -> Vec<(&'static str, String)> {
        let signature = (!self.signing_key.is_empty()).then(|| {
            signing::authorization(self.signing_key.as_bytes(), now_ms.div_euclid(1000), body)
        });
        self.call_headers(signature)
    }

    /// The same headers with a signature worked out beforehand
    /// ([`crate::outbox::Outbox::sign_ahead`]), if any.
    pub fn call_headers(&self, signature: Option<String>) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            (":method", "POST".to_owned()),
            (":path", wire::BATCHES_PATH.to_owned()),
            (":authority", self.authority.clone()),
            ("content-type", wire::BATCH_CONTENT_TYPE.to_owned()),
        ];
        if self.tls {
            headers.push((":scheme", "https".to_owned()));
        }
        if let Some(signature) = signature {
            headers.push((wire::SIGNATURE_HEADER, signature));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn config(json: &str) -> Config {
        Config::parse(json.as_bytes()).unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_signed_call_carries_a_signature_the_collector_accepts() {
        let key = "a-signing-key-of-some-length";
        let d = Destination::of(&config(&format!(
            r#"{{"collector":"10.0.0.5:9400","signing_key":"{key}","tls":true}}"#
        )));
        assert_eq!(d.authority, "10.0.0.5:9400");
        let body = b"batch bytes";
        let now_ms = 1_767_614_400_123;
        let h = d.batch_headers(body, now_ms);
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get(":path"), Some(wire::BATCHES_PATH));
        assert_eq!(get(":scheme"), Some("https"));
        let sig = get(wire::SIGNATURE_HEADER);
        assert_eq!(
            signing::verify(key.as_bytes(), sig, body, now_ms / 1000, 300),
            Ok(())
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn unsigned_and_unix_socket_destinations() {
        let d = Destination::of(&config(r#"{"collector":"unix:/run/kl.sock"}"#));
        assert_eq!(d.authority, "localhost");
        let h = d.batch_headers(b"x", 0);
        assert!(
            h.iter()
                .all(|(k, _)| *k != wire::SIGNATURE_HEADER && *k != ":scheme")
        );
        let named = Destination::of(&config(
            r#"{"collector":"10.0.0.5:9400","collector_host":"collector.internal"}"#,
        ));
        assert_eq!(named.authority, "collector.internal");
    }
}
