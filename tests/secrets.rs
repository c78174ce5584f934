//! No secrets leave the gateway: requests full of credentials go through
//! the real filter, and every byte it sends to the collector and every
//! line it logs is scanned for them.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kong_looker_core::capture::log_line;
use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::{Kong, Profile, Sink};
use kong_looker_testsupport::traffic::{
    self, API_KEY_PREFIX, BASIC_PASSWORD, JWT_SIGNATURE, SIGV4_SIGNATURE,
};
use kong_looker_testsupport::{Collected, filter};

const COOKIE: &str = "session=eyJzZXNzaW9uIjoiY29va2llLXNlY3JldC0xIn0";
const QUERY_SECRET: &str = "query-secret";
const SIGNING_KEY: &str = "signing-key-never-on-the-wire-0001";
const HASH_KEY: &str = "hash-key-never-on-the-wire-000002";
const OTHER_KEY: &str = "x-api-key-secret-value-42";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn no_credential_appears_in_what_the_filter_emits_or_logs() {
    for profile in Profile::ALL {
        scan(profile, false);
    }
}

/// The same with Kong's nginx including `kong_looker.nginx.conf`, whose
/// line carries the Authorization and `apikey` headers to the filter.
#[test]
fn no_credential_appears_where_the_request_comes_in_the_line() {
    scan(Profile::Kong310, true);
}

/// Sends the mix full of credentials through every team's chain, and scans
/// what reached the collector and what was logged. With `line`, the chains
/// leave `identity.key_names` at key-auth's default, so that the request's
/// fields come from `$kong_looker_log`; without it they name a second API
/// key header, so that they come from the header map.
fn scan(profile: Profile, line: bool) {
    {
        let sink = Sink::start().unwrap();
        // Every team's chain, guarded, signing its batches, hashing
        // addresses.
        let key_names: &[&str] = if line {
            &["apikey"]
        } else {
            &["apikey", "x-api-key"]
        };
        let chains: Vec<String> = traffic::TEAMS
            .iter()
            .map(|team| {
                serde_json::json!({
                    "collector": sink.address(),
                    "workspace": team,
                    "batch": {"flush_interval_ms": 100},
                    "signing_key": SIGNING_KEY,
                    "identity": {"key_names": key_names, "auth_plugin": true},
                    "privacy": {"client_address": "hash", "hash_key": HASH_KEY},
                })
                .to_string()
            })
            .collect();
        let f = filter();
        let mut builder = Kong::builder(&f, profile).workers(2);
        for c in &chains {
            builder = builder.chain(c);
        }
        if line {
            builder = builder.nginx_map(log_line::VARIABLE, log_line::FORMAT);
        }
        let mut kong = builder.build();
        let mut mix = Mix::new(MixParams {
            request_ids: true,
            ..MixParams::default()
        });
        let mut secrets = vec![
            JWT_SIGNATURE.to_string(),
            BASIC_PASSWORD.to_string(),
            SIGV4_SIGNATURE.to_string(),
            COOKIE.to_string(),
            QUERY_SECRET.to_string(),
            SIGNING_KEY.to_string(),
            HASH_KEY.to_string(),
            OTHER_KEY.to_string(),
        ];
        for req in mix.take_requests(1500) {
            let (mut r, _) = traffic::kong_request(&mix, &req, profile);
            r = r.header("cookie", COOKIE).header("x-api-key", OTHER_KEY);
            for (name, value) in &r.headers {
                match name.as_str() {
                    "authorization" => {
                        secrets.push(value.clone());
                        if let Some(b) = value.strip_prefix("Basic ") {
                            secrets.push(b.to_string());
                            let plain = String::from_utf8(STANDARD.decode(b).unwrap()).unwrap();
                            secrets.push(plain);
                        }
                        if let Some(token) = value.strip_prefix("Bearer ") {
                            secrets.push(token.to_string());
                        }
                    }
                    "apikey" => {
                        assert!(value.starts_with(API_KEY_PREFIX));
                        secrets.push(value.clone());
                    }
                    _ => {}
                }
            }
            // Chains are per team here, not per team and trust.
            let chain = r.chain / 2;
            let r = r.on_chain(chain);
            let out = kong.request(req.address, &r);
            assert_eq!(out.trap, None);
        }
        kong.advance(Duration::from_secs(3));
        let received = sink.received();
        let collected = Collected::from(&received);
        assert_eq!(collected.rows.len(), 1500, "the traffic was captured");
        // The scan itself must be able to fail: these identity values are
        // recorded, and must be found.
        assert!(
            received
                .iter()
                .any(|r| contains(&r.body, "https://auth.example.com"))
        );
        secrets.sort();
        secrets.dedup();
        let logs = kong.logs();
        if line {
            // Nothing said about the line: every request's fields came in it.
            assert!(
                logs.iter().all(|l| !l.message.contains(log_line::VARIABLE)),
                "{logs:?}"
            );
        }
        for secret in &secrets {
            for r in &received {
                assert!(
                    !contains(&r.body, secret),
                    "{profile:?}: body carries {secret}"
                );
                for (n, v) in &r.headers {
                    assert!(
                        !v.contains(secret.as_str()),
                        "{profile:?}: header {n} carries {secret}"
                    );
                }
            }
            for line in &logs {
                assert!(
                    !line.message.contains(secret.as_str()),
                    "{profile:?}: log carries {secret}"
                );
            }
        }
        // Signed with the key, which itself never travels.
        assert!(received.iter().all(|r| {
            r.header("authorization")
                .is_some_and(|a| a.starts_with("KL1-HMAC-SHA256 t="))
        }));
    }
}
