//! Who called: weighs every piece of identity evidence on a request (Kong's
//! consumer headers, a JWT, a client certificate, SigV4, Basic, a trusted
//! proxy header) and keeps the strongest, with whether Kong verified it or
//! the client merely claimed it. Secrets are never copied: only ids and
//! names leave this module.

use kong_looker_proto::v1::{AuthMethod, Trust};

use super::privacy::Pseudonymiser;
use super::{basic, dn, jwt, sigv4};
use crate::config::IdentityConfig;

/// Longest identity value kept; longer ones are cut at a char boundary.
pub const MAX_FIELD_BYTES: usize = 256;
/// Most groups kept.
pub const MAX_GROUPS: usize = 32;

/// The raw evidence, as read from the request. Empty means absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Evidence<'a> {
    /// `X-Consumer-ID`.
    pub consumer_id: &'a str,
    /// `X-Consumer-Username`.
    pub consumer_username: &'a str,
    /// `X-Consumer-Custom-ID`.
    pub consumer_custom_id: &'a str,
    /// `X-Credential-Identifier`.
    pub credential: &'a str,
    /// `X-Anonymous-Consumer`.
    pub anonymous: &'a str,
    /// `X-Consumer-Groups`.
    pub consumer_groups: &'a str,
    /// `X-Authenticated-Groups`.
    pub authenticated_groups: &'a str,
    /// `X-Authenticated-Userid` (oauth2).
    pub authenticated_userid: &'a str,
    /// `X-Authenticated-Scope` (oauth2).
    pub authenticated_scope: &'a str,
    /// One of the configured API key headers was present.
    pub api_key_present: bool,
    /// `Authorization`.
    pub authorization: &'a str,
    /// `kong.ctx.shared.authenticated_jwt_token`: the token Kong's jwt
    /// plugin verified.
    pub verified_jwt: &'a str,
    /// `ngx.ssl_client_s_dn`.
    pub client_dn: &'a str,
    /// `ngx.ssl_client_fingerprint`.
    pub client_fingerprint: &'a str,
    /// `connection.mtls`: nginx verified the client certificate.
    pub mtls_verified: bool,
    /// The first configured trusted proxy header present.
    pub trusted_user: &'a str,
}

/// The caller, as recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The strongest evidence.
    pub auth_method: AuthMethod,
    /// Verified or claimed.
    pub trust: Trust,
    /// Kong consumer id.
    pub consumer_id: String,
    /// Kong consumer username.
    pub consumer_username: String,
    /// Kong consumer custom id.
    pub consumer_custom_id: String,
    /// Credential identifier (never the secret).
    pub credential: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Client application id.
    pub client_id: String,
    /// Kong's anonymous consumer.
    pub anonymous: bool,
}

/// A resolved identity as the capturer's cache keeps it: its texts end to
/// end in one allocation, and where each ends. As an [`Identity`] it took
/// seven strings, a vector and a string per group: a consumer with an id,
/// a name, a custom id, a credential and one group was charged 481 bytes
/// of a cache's cap on wasm32, slot included; packed, 261. So a cache
/// holds nearly twice the callers in the same bytes, and one that is too
/// small for the traffic starts afresh half as often (`bench/RESULTS.md`,
/// "Where the time goes, not the instructions").
///
/// Handing out a caller's fields reads nothing but this value: the ends of
/// the first [`INLINE_GROUPS`] groups lie beside the fields' ends, and the
/// texts are sliced without reading them. At high cardinality the texts
/// are far from the cache entry, and the batch builder, which knows most
/// callers by their memo key, never looks at them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packed {
    /// The seven fields, then the groups.
    texts: Box<str>,
    /// Where each of the seven fields ends in `texts`, then where each of
    /// the first [`INLINE_GROUPS`] groups does.
    ends: [u16; 7 + INLINE_GROUPS],
    /// Where each further group ends; empty (no allocation) for most.
    more_group_ends: Box<[u16]>,
    /// Groups in all.
    groups: u8,
    auth_method: AuthMethod,
    trust: Trust,
    anonymous: bool,
}

/// Groups whose ends a [`Packed`] keeps inline: a caller is in a few.
pub const INLINE_GROUPS: usize = 4;

impl Packed {
    /// `id`, packed. Its texts are at most seven fields and [`MAX_GROUPS`]
    /// groups of [`MAX_FIELD_BYTES`] each, so every end fits a `u16`.
    pub fn new(id: &Identity) -> Self {
        let fields = [
            &id.consumer_id,
            &id.consumer_username,
            &id.consumer_custom_id,
            &id.credential,
            &id.subject,
            &id.issuer,
            &id.client_id,
        ];
        let groups = id.groups.get(..MAX_GROUPS).unwrap_or(&id.groups);
        let len = fields
            .iter()
            .map(|f| cut(f).len())
            .chain(groups.iter().map(|g| cut(g).len()))
            .fold(0, usize::saturating_add);
        let mut texts = String::with_capacity(len);
        // Each end is taken right after a whole `&str` is pushed, so it is
        // a char boundary; at most 39 texts of 256 bytes, so it fits.
        let mut push = |t: &str| {
            texts.push_str(cut(t));
            u16::try_from(texts.len()).unwrap_or(u16::MAX)
        };
        let mut ends = [0u16; 7 + INLINE_GROUPS];
        let (field_ends, group_ends) = ends.split_at_mut(7);
        for (e, f) in field_ends.iter_mut().zip(fields) {
            *e = push(f);
        }
        for (e, g) in group_ends.iter_mut().zip(groups) {
            *e = push(g);
        }
        let more_group_ends = groups.iter().skip(INLINE_GROUPS).map(|g| push(g)).collect();
        Packed {
            texts: texts.into_boxed_str(),
            ends,
            more_group_ends,
            groups: u8::try_from(groups.len()).unwrap_or(u8::MAX),
            auth_method: id.auth_method,
            trust: id.trust,
            anonymous: id.anonymous,
        }
    }

    /// The text between two ends of this value; empty for ends out of
    /// order or past the texts, which it never makes.
    // Sliced unchecked: a checked slice reads the bytes at both ends to
    // find them char boundaries, which at high cardinality is a wait for
    // far memory on every record, for texts the builder mostly never reads.
    #[allow(unsafe_code)]
    fn text(&self, start: u16, end: u16) -> &str {
        let (start, end) = (usize::from(start), usize::from(end));
        if start > end || end > self.texts.len() {
            return "";
        }
        // SAFETY: `start` and `end` are 0 or ends of this value, each taken
        // in `new` right after a whole `&str` was pushed onto `texts`, so
        // both are char boundaries of it; the check above keeps them in
        // order and in bounds.
        unsafe { self.texts.get_unchecked(start..end) }
    }

    /// Consumer id, username, custom id, credential, subject, issuer and
    /// client id, in that order.
    pub fn fields(&self) -> [&str; 7] {
        let mut start = 0;
        core::array::from_fn(|i| {
            let end = self.ends.get(i).copied().unwrap_or(start);
            let t = self.text(start, end);
            start = end;
            t
        })
    }

    /// The groups, in order.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        let (fields, inline) = self.ends.split_at(7);
        let mut start = fields.last().copied().unwrap_or(0);
        inline
            .iter()
            .chain(self.more_group_ends.iter())
            .take(usize::from(self.groups))
            .map(move |&end| {
                let t = self.text(start, end);
                start = end;
                t
            })
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        usize::from(self.groups)
    }

    /// The strongest evidence.
    pub fn auth_method(&self) -> AuthMethod {
        self.auth_method
    }

    /// Verified or claimed.
    pub fn trust(&self) -> Trust {
        self.trust
    }

    /// Kong's anonymous consumer.
    pub fn anonymous(&self) -> bool {
        self.anonymous
    }

    /// Bytes held on the heap, with an allocator's header per allocation.
    pub fn heap_bytes(&self) -> usize {
        let boxed = |len: usize| if len == 0 { 0 } else { len.saturating_add(16) };
        boxed(self.texts.len()).saturating_add(boxed(self.more_group_ends.len().saturating_mul(2)))
    }
}

/// A text no longer than [`MAX_FIELD_BYTES`], as resolution leaves them;
/// cut here too, so that the ends of a packed identity always fit.
fn cut(s: &str) -> &str {
    super::cut(s, MAX_FIELD_BYTES)
}

/// How strong a method is as evidence of who called; higher wins.
fn strength(method: AuthMethod) -> u8 {
    match method {
        AuthMethod::Mtls => 10,
        AuthMethod::Oidc => 9,
        AuthMethod::Jwt => 8,
        AuthMethod::AwsSigv4 => 7,
        AuthMethod::Hmac => 6,
        AuthMethod::Basic => 5,
        AuthMethod::KeyAuth => 4,
        AuthMethod::Oauth2 => 3,
        AuthMethod::TrustedProxy => 2,
        AuthMethod::KongConsumer => 1,
        AuthMethod::Unspecified => 0,
    }
}

/// The bearer token a request carries and how far it is trusted: the one
/// Kong's jwt plugin verified, else the client's `Authorization`.
pub fn jwt_token<'a>(ev: &Evidence<'a>, cfg: &IdentityConfig) -> Option<(&'a str, Trust)> {
    if !cfg.jwt {
        return None;
    }
    if !ev.verified_jwt.trim().is_empty() {
        return Some((ev.verified_jwt.trim(), Trust::Verified));
    }
    jwt::bearer(ev.authorization).map(|t| (t, chain_trust(cfg)))
}

fn chain_trust(cfg: &IdentityConfig) -> Trust {
    if cfg.auth_plugin {
        Trust::Verified
    } else {
        Trust::Claimed
    }
}

/// Resolves the identity of a request; `None` when there is no evidence.
pub fn resolve(ev: &Evidence<'_>, cfg: &IdentityConfig) -> Option<Identity> {
    let claims = jwt_token(ev, cfg)
        .and_then(|(t, trust)| jwt::claims(t, &cfg.groups_claim).ok().map(|c| (c, trust)));
    resolve_with_claims(ev, cfg, claims.as_ref().map(|(c, t)| (c, *t)))
}

/// [`resolve`], with the token's claims already decoded (the filter caches
/// them per token).
pub fn resolve_with_claims(
    ev: &Evidence<'_>,
    cfg: &IdentityConfig,
    claims: Option<(&jwt::Claims, Trust)>,
) -> Option<Identity> {
    let chain_trust = chain_trust(cfg);
    let mut id = Identity::default();
    let mut best: Option<(AuthMethod, Trust)> = None;
    let mut offer = |method: AuthMethod, trust: Trust| {
        let better = match best {
            None => true,
            Some((m, t)) => {
                let rank = |t: Trust| u8::from(t == Trust::Verified);
                (rank(trust), strength(method)) > (rank(t), strength(m))
            }
        };
        if better {
            best = Some((method, trust));
        }
    };

    if cfg.consumer_headers {
        id.consumer_id = bounded(ev.consumer_id);
        id.consumer_username = bounded(ev.consumer_username);
        id.consumer_custom_id = bounded(ev.consumer_custom_id);
        id.credential = bounded(ev.credential);
        id.anonymous = ev.anonymous.trim().eq_ignore_ascii_case("true");
        add_groups(&mut id.groups, ev.consumer_groups);
        add_groups(&mut id.groups, ev.authenticated_groups);
        let consumer = !(id.consumer_id.is_empty()
            && id.consumer_username.is_empty()
            && id.consumer_custom_id.is_empty()
            && id.credential.is_empty());
        let oauth2 = !ev.authenticated_userid.is_empty() || !ev.authenticated_scope.is_empty();
        if oauth2 {
            offer(AuthMethod::Oauth2, chain_trust);
            set_if_empty(&mut id.subject, ev.authenticated_userid);
            // oauth2 puts the client id in X-Credential-Identifier.
            set_if_empty(&mut id.client_id, ev.credential);
        } else if consumer && ev.api_key_present {
            offer(AuthMethod::KeyAuth, chain_trust);
        } else if consumer {
            offer(AuthMethod::KongConsumer, chain_trust);
        }
        if consumer && is_scheme(ev.authorization, "hmac") {
            offer(AuthMethod::Hmac, chain_trust);
        }
    }

    if let Some((claims, trust)) = claims {
        let method = if claims.oidc {
            AuthMethod::Oidc
        } else {
            AuthMethod::Jwt
        };
        offer(method, trust);
        set_if_empty(&mut id.subject, claims.subject.as_deref().unwrap_or(""));
        set_if_empty(&mut id.issuer, claims.issuer.as_deref().unwrap_or(""));
        set_if_empty(&mut id.client_id, claims.client_id.as_deref().unwrap_or(""));
        for group in &claims.groups {
            push_group(&mut id.groups, group);
        }
    }

    if cfg.sigv4
        && let Some(sig) = sigv4::parse(ev.authorization)
    {
        offer(AuthMethod::AwsSigv4, chain_trust);
        set_if_empty(&mut id.credential, sig.access_key);
        if id.issuer.is_empty() {
            id.issuer = bounded(&format!("aws:{}:{}", sig.region, sig.service));
        }
    }

    if cfg.basic
        && let Some(user) = basic::username(ev.authorization)
    {
        offer(AuthMethod::Basic, chain_trust);
        set_if_empty(&mut id.credential, &user);
        set_if_empty(&mut id.subject, &user);
    }

    if cfg.mtls && !ev.client_dn.trim().is_empty() {
        let trust = if ev.mtls_verified {
            Trust::Verified
        } else {
            Trust::Claimed
        };
        offer(AuthMethod::Mtls, trust);
        let dn = ev.client_dn.trim();
        match dn::common_name(dn) {
            Some(cn) => set_if_empty(&mut id.subject, &cn),
            None => set_if_empty(&mut id.subject, dn),
        }
        let fingerprint = ev.client_fingerprint.trim();
        if fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
            set_if_empty(&mut id.credential, fingerprint);
        }
    }

    if !ev.trusted_user.trim().is_empty() {
        offer(AuthMethod::TrustedProxy, Trust::Verified);
        set_if_empty(&mut id.subject, ev.trusted_user.trim());
    }

    let (method, trust) = best?;
    id.auth_method = method;
    id.trust = trust;
    Some(id)
}

impl Identity {
    /// Replaces names, custom ids, credentials, subjects and client ids by
    /// keyed hashes. The consumer id (Kong's own UUID) and the issuer and
    /// groups stay, so that Looker can still join and filter on them.
    pub fn pseudonymise(&mut self, hasher: &Pseudonymiser) {
        for field in [
            &mut self.consumer_username,
            &mut self.consumer_custom_id,
            &mut self.credential,
            &mut self.subject,
            &mut self.client_id,
        ] {
            if !field.is_empty() {
                *field = hasher.hash(field);
            }
        }
    }
}

/// Whether an Authorization value uses `scheme` (case-insensitive).
fn is_scheme(authorization: &str, scheme: &str) -> bool {
    let value = authorization.trim_start();
    value
        .get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        && value
            .as_bytes()
            .get(scheme.len())
            .is_some_and(|&b| b == b' ')
}

/// A value cut to [`MAX_FIELD_BYTES`], without control characters around.
fn bounded(value: &str) -> String {
    super::cut(value.trim(), MAX_FIELD_BYTES).to_string()
}

fn set_if_empty(field: &mut String, value: &str) {
    if field.is_empty() {
        *field = bounded(value);
    }
}

/// Adds comma-separated groups (Kong joins them with `, `).
fn add_groups(groups: &mut Vec<String>, list: &str) {
    for group in list.split(',').take(MAX_GROUPS) {
        push_group(groups, group);
    }
}

fn push_group(groups: &mut Vec<String>, group: &str) {
    let group = bounded(group);
    if !group.is_empty() && groups.len() < MAX_GROUPS && !groups.contains(&group) {
        groups.push(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn a_packed_identity_gives_back_every_field_and_group_as_it_was() {
        let long = "é".repeat(MAX_FIELD_BYTES); // twice the bytes, cut to 256
        let cases = [
            Identity::default(),
            Identity {
                auth_method: AuthMethod::Jwt,
                trust: Trust::Verified,
                consumer_id: "6f1c0a52-8d2e-4c7b-9a51-0f3e2d1c4b5a".into(),
                consumer_username: "alice".into(),
                credential: "key-1".into(),
                groups: vec!["gold".into(), "".into(), "ops ✓".into()],
                issuer: "https://idp.example".into(),
                anonymous: true,
                ..Identity::default()
            },
            Identity {
                consumer_id: long.clone(),
                consumer_username: long.clone(),
                consumer_custom_id: long.clone(),
                credential: long.clone(),
                subject: long.clone(),
                issuer: long.clone(),
                client_id: long.clone(),
                groups: (0..MAX_GROUPS + 5).map(|i| format!("{i}{long}")).collect(),
                ..Identity::default()
            },
            // As many groups as are kept inline, and one more.
            Identity {
                consumer_id: "c".into(),
                groups: (0..INLINE_GROUPS).map(|i| format!("g{i}")).collect(),
                ..Identity::default()
            },
            Identity {
                groups: (0..=INLINE_GROUPS).map(|i| format!("é{i}")).collect(),
                ..Identity::default()
            },
        ];
        for id in &cases {
            let p = Packed::new(id);
            let cut = |s: &str| super::super::cut(s, MAX_FIELD_BYTES).to_string();
            let fields = [
                &id.consumer_id,
                &id.consumer_username,
                &id.consumer_custom_id,
                &id.credential,
                &id.subject,
                &id.issuer,
                &id.client_id,
            ]
            .map(|f| cut(f));
            assert_eq!(p.fields().map(str::to_string), fields);
            let groups: Vec<String> = id.groups.iter().take(MAX_GROUPS).map(|g| cut(g)).collect();
            assert_eq!(p.groups().map(str::to_string).collect::<Vec<_>>(), groups);
            assert_eq!(p.group_count(), groups.len());
            assert_eq!(
                (p.auth_method(), p.trust(), p.anonymous()),
                (id.auth_method, id.trust, id.anonymous)
            );
            // One allocation for the texts, and one for the ends of the
            // groups past those kept inline.
            let texts: usize = fields.iter().chain(&groups).map(String::len).sum();
            let expected = [texts, 2 * groups.len().saturating_sub(INLINE_GROUPS)]
                .iter()
                .map(|&n| if n == 0 { 0 } else { n + 16 })
                .sum::<usize>();
            assert_eq!(p.heap_bytes(), expected);
        }
    }

    fn token(payload: &str) -> String {
        format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn cfg() -> IdentityConfig {
        IdentityConfig::default()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn no_evidence_is_anonymous() {
        assert_eq!(resolve(&Evidence::default(), &cfg()), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn key_auth_consumer_is_verified_only_behind_an_auth_plugin() {
        let ev = Evidence {
            consumer_id: "8d2b7f5e-8f6a-4c43-9d8e-2f5a1c7b9e01",
            consumer_username: "alice",
            credential: "cred-1",
            consumer_groups: "gold, beta",
            api_key_present: true,
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(id.auth_method, AuthMethod::KeyAuth);
        assert_eq!(id.trust, Trust::Claimed);
        assert_eq!(id.groups, ["gold", "beta"]);
        let guarded = IdentityConfig {
            auth_plugin: true,
            ..cfg()
        };
        assert_eq!(resolve(&ev, &guarded).unwrap().trust, Trust::Verified);
        let off = IdentityConfig {
            consumer_headers: false,
            ..cfg()
        };
        assert_eq!(resolve(&ev, &off), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn oidc_token_wins_over_consumer_headers() {
        let auth = format!(
            "Bearer {}",
            token(
                r#"{"sub":"u-1","iss":"https://idp.example.com/","azp":"billing-app","groups":["ops"]}"#
            )
        );
        let ev = Evidence {
            consumer_username: "svc",
            authorization: &auth,
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(id.auth_method, AuthMethod::Oidc);
        assert_eq!(id.subject, "u-1");
        assert_eq!(id.issuer, "https://idp.example.com/");
        assert_eq!(id.client_id, "billing-app");
        assert_eq!(id.groups, ["ops"]);
        assert_eq!(id.consumer_username, "svc");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn kong_verified_jwt_is_verified() {
        let t = token(r#"{"sub":"device-7","iss":"key-1"}"#);
        let ev = Evidence {
            verified_jwt: &t,
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(
            (id.auth_method, id.trust),
            (AuthMethod::Jwt, Trust::Verified)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn verified_evidence_beats_stronger_claimed_evidence() {
        // A client-sent bearer token on an unguarded chain is claimed; the
        // trusted proxy header is verified, so it is the method recorded.
        let auth = format!("Bearer {}", token(r#"{"sub":"mallory"}"#));
        let ev = Evidence {
            authorization: &auth,
            trusted_user: "bob@example.com",
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(id.auth_method, AuthMethod::TrustedProxy);
        assert_eq!(id.trust, Trust::Verified);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn sigv4_basic_and_mtls() {
        let ev = Evidence {
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/eu-west-1/execute-api/aws4_request, SignedHeaders=host, Signature=deadbeef",
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(id.auth_method, AuthMethod::AwsSigv4);
        assert_eq!(id.credential, "AKIDEXAMPLE");
        assert_eq!(id.issuer, "aws:eu-west-1:execute-api");

        let basic = format!("Basic {}", STANDARD.encode("carol:s3cret"));
        let ev = Evidence {
            authorization: &basic,
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(
            (id.auth_method, id.credential.as_str()),
            (AuthMethod::Basic, "carol")
        );

        let ev = Evidence {
            client_dn: "CN=payments-svc,O=Example",
            client_fingerprint: "a1b2c3",
            mtls_verified: true,
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(
            (id.auth_method, id.trust),
            (AuthMethod::Mtls, Trust::Verified)
        );
        assert_eq!(
            (id.subject.as_str(), id.credential.as_str()),
            ("payments-svc", "a1b2c3")
        );
        let off = IdentityConfig {
            mtls: false,
            ..cfg()
        };
        assert_eq!(resolve(&ev, &off), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn oauth2_and_hmac() {
        let ev = Evidence {
            consumer_id: "c1",
            credential: "client-abc",
            authenticated_userid: "user-9",
            authenticated_scope: "read",
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(id.auth_method, AuthMethod::Oauth2);
        assert_eq!(
            (id.subject.as_str(), id.client_id.as_str()),
            ("user-9", "client-abc")
        );
        let ev = Evidence {
            consumer_id: "c1",
            authorization: "hmac username=\"bob\", algorithm=\"hmac-sha256\", signature=\"x\"",
            ..Evidence::default()
        };
        assert_eq!(resolve(&ev, &cfg()).unwrap().auth_method, AuthMethod::Hmac);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn values_and_groups_are_bounded() {
        let long = "x".repeat(70_000);
        let many = (0..10_000)
            .map(|i| format!("g{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let ev = Evidence {
            consumer_username: &long,
            consumer_groups: &many,
            ..Evidence::default()
        };
        let id = resolve(&ev, &cfg()).unwrap();
        assert_eq!(id.consumer_username.len(), MAX_FIELD_BYTES);
        assert_eq!(id.groups.len(), MAX_GROUPS);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn pseudonyms_replace_personal_fields() {
        let h = Pseudonymiser::new(b"0123456789abcdef").unwrap();
        let mut id = Identity {
            consumer_id: "c1".into(),
            consumer_username: "alice".into(),
            subject: "alice@example.com".into(),
            issuer: "https://idp".into(),
            ..Identity::default()
        };
        id.pseudonymise(&h);
        assert_eq!(id.consumer_id, "c1");
        assert_eq!(id.issuer, "https://idp");
        assert!(id.consumer_username.starts_with("h:"));
        assert!(!id.subject.contains("alice"));
    }
}
