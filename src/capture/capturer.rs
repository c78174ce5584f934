//! One chain's capture: picks what it needs from the request headers in
//! `on_http_request_headers` ([`RequestFacts`]), then in `on_log` reads
//! Kong's properties through a [`LogSource`] and assembles a [`Captured`]
//! record. Properties are read lazily, only when the config and the
//! request call for them, because each read is a host call.
//!
//! The host is behind [`LogSource`], so all of this runs natively and on
//! wasm32 with a map standing in for Kong.

use std::collections::HashMap;

use kong_looker_proto::row::method_from_name;
use kong_looker_proto::v1::{AgentCategory, Method, ResponseSource};
use kong_looker_proto::{AgentRef, IdentityRef, Record, RouteRef};

use super::agent::AgentClassifier;
use super::identity::{self, Evidence, Identity};
use super::path::PathTemplater;
use super::privacy::{self, AddressMode, Pseudonymiser};
use super::sampler::Sampler;
use super::{router, timing};
use crate::config::Config;

/// Longest `Authorization` value kept between phases (a JWT is at most
/// [`super::jwt::MAX_TOKEN_BYTES`]).
const MAX_AUTHORIZATION_BYTES: usize = super::jwt::MAX_TOKEN_BYTES + 64;
/// Longest value kept of any other header.
const MAX_HEADER_BYTES: usize = 4096;
/// Route and service names remembered per chain on Kong 3.8.
const NAME_CACHE_ENTRIES: usize = 4096;

/// What Kong shows a filter in the log phase.
pub trait LogSource {
    /// A property by its dotted name, e.g. `ngx.request_time`.
    fn property(&mut self, name: &str) -> Option<Vec<u8>>;
    /// A response header by lowercase name, e.g. `:status`.
    fn response_header(&mut self, name: &str) -> Option<Vec<u8>>;
}

/// The request headers a record needs, read in `on_http_request_headers`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// Filter clock when the headers arrived, Unix ms.
    pub started_at_ms: i64,
    /// `:method`.
    pub method: String,
    /// `:path`, query included (the templater drops it).
    pub path: String,
    /// `host`, else `:authority`.
    pub host: String,
    /// `user-agent`.
    pub user_agent: String,
    /// `authorization` (parsed in the log phase, never stored in a record).
    pub authorization: String,
    /// `traceparent`.
    pub traceparent: String,
    /// `content-length`.
    pub content_length: String,
    /// `x-consumer-id`.
    pub consumer_id: String,
    /// `x-consumer-username`.
    pub consumer_username: String,
    /// `x-consumer-custom-id`.
    pub consumer_custom_id: String,
    /// `x-credential-identifier`.
    pub credential: String,
    /// `x-anonymous-consumer`.
    pub anonymous: String,
    /// `x-consumer-groups`.
    pub consumer_groups: String,
    /// `x-authenticated-groups`.
    pub authenticated_groups: String,
    /// `x-authenticated-userid`.
    pub authenticated_userid: String,
    /// `x-authenticated-scope`.
    pub authenticated_scope: String,
    /// A configured API key header was present.
    pub api_key_present: bool,
    /// The first configured trusted proxy header present.
    pub trusted_user: String,
}

/// One captured request, owned, ready to append.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Captured {
    /// Start, Unix ms.
    pub started_at_ms: i64,
    /// Kong route id.
    pub route_id: String,
    /// Kong route name.
    pub route_name: String,
    /// Kong service id.
    pub service_id: String,
    /// Kong service name.
    pub service_name: String,
    /// Method.
    pub method: Method,
    /// Method token when `method` is `Other`.
    pub method_text: String,
    /// Host header.
    pub host: String,
    /// Path template.
    pub path: String,
    /// Status; 0 when unknown.
    pub status: u16,
    /// Upstream or Kong.
    pub source: ResponseSource,
    /// Total latency, µs.
    pub latency_total_us: u64,
    /// Upstream latency, µs.
    pub latency_upstream_us: Option<u64>,
    /// Request bytes.
    pub request_bytes: u64,
    /// Response bytes.
    pub response_bytes: u64,
    /// The caller.
    pub identity: Option<Identity>,
    /// Client address after the privacy transform.
    pub client_address: String,
    /// Agent family and name.
    pub agent: Option<(AgentCategory, &'static str)>,
    /// Kong request id.
    pub request_id: String,
    /// W3C trace id.
    pub trace_id: String,
    /// Requests this record stands for.
    pub sample_weight: f32,
}

/// Per-chain capture state: the compiled config and the caches.
#[derive(Debug)]
pub struct Capturer {
    config: Config,
    key_names: Vec<String>,
    trusted_headers: Vec<String>,
    templater: PathTemplater,
    agents: AgentClassifier,
    sampler: Sampler,
    address_mode: AddressMode,
    hasher: Option<Pseudonymiser>,
    route_names: HashMap<String, String>,
    service_names: HashMap<String, String>,
    sampled_out: u64,
}

impl Capturer {
    /// A capturer for a checked config; `seed` varies the sampling per
    /// instance.
    pub fn new(config: Config, seed: u64) -> Self {
        let lower = |names: &[String]| names.iter().map(|n| n.to_ascii_lowercase()).collect();
        Capturer {
            key_names: lower(&config.identity.key_names),
            trusted_headers: lower(&config.identity.trusted_headers),
            templater: PathTemplater::new(
                config.paths.rules(),
                usize::try_from(config.paths.max_templates).unwrap_or(usize::MAX),
            ),
            agents: AgentClassifier::default(),
            sampler: Sampler::new(config.sample_rate, seed),
            address_mode: config.privacy.client_address.mode(),
            hasher: Pseudonymiser::new(config.privacy.hash_key.as_bytes()),
            route_names: HashMap::new(),
            service_names: HashMap::new(),
            sampled_out: 0,
            config,
        }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Paths recorded as `{other}` because the template bound was reached.
    pub fn paths_overflowed(&self) -> u64 {
        self.templater.overflowed()
    }

    /// Requests left out by sampling (by design, not a loss: kept records
    /// carry their weight).
    pub fn sampled_out(&self) -> u64 {
        self.sampled_out
    }

    /// Picks the headers a record needs. Names are matched without regard
    /// to case, values are cut to a bound, invalid UTF-8 is replaced.
    pub fn request_facts<'a>(
        &self,
        headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        started_at_ms: i64,
    ) -> RequestFacts {
        let mut facts = RequestFacts {
            started_at_ms,
            ..RequestFacts::default()
        };
        let mut authority = String::new();
        let mut trusted: Option<(usize, String)> = None;
        let mut lower = [0u8; 128];
        for (name, value) in headers {
            let Some(buf) = lower.get_mut(..name.len()) else {
                continue;
            };
            buf.copy_from_slice(name);
            buf.make_ascii_lowercase();
            let Ok(name) = std::str::from_utf8(buf) else {
                continue;
            };
            let field = match name {
                ":method" => &mut facts.method,
                ":path" => &mut facts.path,
                ":authority" => &mut authority,
                "host" => &mut facts.host,
                "user-agent" => &mut facts.user_agent,
                "authorization" => {
                    if value.len() <= MAX_AUTHORIZATION_BYTES {
                        facts.authorization = String::from_utf8_lossy(value).into_owned();
                    }
                    continue;
                }
                "traceparent" => &mut facts.traceparent,
                "content-length" => &mut facts.content_length,
                "x-consumer-id" if self.config.identity.consumer_headers => &mut facts.consumer_id,
                "x-consumer-username" if self.config.identity.consumer_headers => {
                    &mut facts.consumer_username
                }
                "x-consumer-custom-id" if self.config.identity.consumer_headers => {
                    &mut facts.consumer_custom_id
                }
                "x-credential-identifier" if self.config.identity.consumer_headers => {
                    &mut facts.credential
                }
                "x-anonymous-consumer" => &mut facts.anonymous,
                "x-consumer-groups" => &mut facts.consumer_groups,
                "x-authenticated-groups" => &mut facts.authenticated_groups,
                "x-authenticated-userid" => &mut facts.authenticated_userid,
                "x-authenticated-scope" => &mut facts.authenticated_scope,
                other => {
                    if self.key_names.iter().any(|k| k == other) {
                        facts.api_key_present = true;
                    } else if let Some(rank) = self.trusted_headers.iter().position(|t| t == other)
                        && trusted.as_ref().is_none_or(|(r, _)| rank < *r)
                        && !value.is_empty()
                    {
                        trusted = Some((rank, keep(value)));
                    }
                    continue;
                }
            };
            *field = keep(value);
        }
        if facts.host.is_empty() {
            facts.host = authority;
        }
        if let Some((_, user)) = trusted {
            facts.trusted_user = user;
        }
        facts
    }

    /// Assembles the record of a finished request; `None` when sampling
    /// leaves it out. `now_ms` is the filter clock in `on_log`.
    pub fn capture(
        &mut self,
        facts: &RequestFacts,
        src: &mut dyn LogSource,
        now_ms: i64,
    ) -> Option<Captured> {
        let status = text(src.property("response.code"))
            .and_then(|s| timing::status(&s))
            .or_else(|| text(src.response_header(":status")).and_then(|s| timing::status(&s)))
            .unwrap_or(0);
        let Some(sample_weight) = self.sampler.keep(status) else {
            self.sampled_out = self.sampled_out.saturating_add(1);
            return None;
        };

        let own_clock_us = u64::try_from(now_ms.saturating_sub(facts.started_at_ms))
            .unwrap_or(0)
            .saturating_mul(1000)
            .min(timing::MAX_DURATION_US);
        let latency_total_us = text(src.property("ngx.request_time"))
            .and_then(|s| timing::seconds_to_us(&s))
            .unwrap_or(own_clock_us);
        let upstream_status = text(src.property("ngx.upstream_status"))
            .and_then(|s| timing::last_upstream_status(&s));
        let latency_upstream_us = match upstream_status {
            Some(_) => text(src.property("ngx.upstream_response_time"))
                .and_then(|s| timing::upstream_us(&s)),
            None => None,
        };
        let source = if upstream_status.is_some() {
            ResponseSource::Upstream
        } else {
            ResponseSource::Kong
        };

        let request_bytes = text(src.property("request.size"))
            .and_then(|s| timing::size(&s))
            .or_else(|| timing::size(&facts.content_length))
            .unwrap_or(0);
        let response_bytes = text(src.property("response.size"))
            .and_then(|s| timing::size(&s))
            .or_else(|| text(src.response_header("content-length")).and_then(|s| timing::size(&s)))
            .unwrap_or(0);

        let (route_id, route_name) = self.entity(src, "route");
        let (service_id, service_name) = self.entity(src, "service");

        let method = method_from_name(&facts.method);
        let method_text = if method == Method::Other {
            bounded(&facts.method, 32)
        } else {
            String::new()
        };

        let identity = self.identity(facts, src);

        let client_address = text(src.property("ngx.remote_addr"))
            .and_then(|a| privacy::client_address(&a, &self.address_mode, self.hasher.as_ref()))
            .unwrap_or_default();

        let agent = self
            .agents
            .classify(&facts.user_agent)
            .map(|rule| (rule.category, rule.name.as_str()));

        let request_id = if self.config.request_id {
            text(src.property("ngx.kong_request_id"))
                .filter(|id| id.len() <= 64 && id.bytes().all(|b| b.is_ascii_graphic()))
                .unwrap_or_default()
        } else {
            String::new()
        };

        Some(Captured {
            started_at_ms: facts.started_at_ms,
            route_id,
            route_name,
            service_id,
            service_name,
            method,
            method_text,
            host: bounded(&facts.host, 256),
            path: self.templater.template(&facts.path),
            status,
            source,
            latency_total_us,
            latency_upstream_us,
            request_bytes,
            response_bytes,
            identity,
            client_address,
            agent,
            request_id,
            trace_id: timing::trace_id(&facts.traceparent)
                .unwrap_or_default()
                .to_string(),
            sample_weight,
        })
    }

    /// The id and name of the route or service: names from
    /// `kong.<kind>_name` (3.9), else from a cache by id, else from the
    /// `kong.router.<kind>` JSON (3.8), which is then cached.
    fn entity(&mut self, src: &mut dyn LogSource, kind: &str) -> (String, String) {
        let id = text(src.property(&format!("kong.{kind}_id")))
            .map(|s| bounded(&s, router::MAX_FIELD_BYTES))
            .unwrap_or_default();
        if let Some(name) = text(src.property(&format!("kong.{kind}_name"))) {
            return (id, bounded(&name, router::MAX_FIELD_BYTES));
        }
        let cache = if kind == "route" {
            &mut self.route_names
        } else {
            &mut self.service_names
        };
        if !id.is_empty()
            && let Some(name) = cache.get(&id)
        {
            return (id, name.clone());
        }
        let Some(parsed) = src
            .property(&format!("kong.router.{kind}"))
            .and_then(|json| router::entity(&json))
        else {
            return (id, String::new());
        };
        let id = if id.is_empty() {
            parsed.id.unwrap_or_default()
        } else {
            id
        };
        let name = parsed.name.unwrap_or_default();
        if !id.is_empty() {
            if cache.len() >= NAME_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(id.clone(), name.clone());
        }
        (id, name)
    }

    fn identity(&self, facts: &RequestFacts, src: &mut dyn LogSource) -> Option<Identity> {
        let cfg = &self.config.identity;
        let consumer = !facts.consumer_id.is_empty() || !facts.credential.is_empty();
        // Kong's jwt plugin keeps the token it verified here; read it only
        // when the request shows a consumer but no bearer token (the plugin
        // also takes tokens from the query and cookies).
        let verified_jwt =
            if cfg.jwt && consumer && super::jwt::bearer(&facts.authorization).is_none() {
                text(src.property("kong.ctx.shared.authenticated_jwt_token")).unwrap_or_default()
            } else {
                String::new()
            };
        let (client_dn, client_fingerprint, mtls_verified) = if cfg.mtls {
            match text(src.property("ngx.ssl_client_s_dn")).filter(|d| !d.is_empty()) {
                Some(dn) => (
                    dn,
                    text(src.property("ngx.ssl_client_fingerprint")).unwrap_or_default(),
                    text(src.property("connection.mtls")).is_some_and(|v| v == "true"),
                ),
                None => (String::new(), String::new(), false),
            }
        } else {
            (String::new(), String::new(), false)
        };
        let evidence = Evidence {
            consumer_id: &facts.consumer_id,
            consumer_username: &facts.consumer_username,
            consumer_custom_id: &facts.consumer_custom_id,
            credential: &facts.credential,
            anonymous: &facts.anonymous,
            consumer_groups: &facts.consumer_groups,
            authenticated_groups: &facts.authenticated_groups,
            authenticated_userid: &facts.authenticated_userid,
            authenticated_scope: &facts.authenticated_scope,
            api_key_present: facts.api_key_present,
            authorization: &facts.authorization,
            verified_jwt: &verified_jwt,
            client_dn: &client_dn,
            client_fingerprint: &client_fingerprint,
            mtls_verified,
            trusted_user: &facts.trusted_user,
        };
        let mut id = identity::resolve(&evidence, cfg)?;
        if self.config.privacy.pseudonymize
            && let Some(hasher) = &self.hasher
        {
            id.pseudonymise(hasher);
        }
        Some(id)
    }
}

impl Captured {
    /// Calls `f` with the record borrowed from this capture.
    pub fn with_record<R>(&self, workspace: &str, f: impl FnOnce(&Record<'_>) -> R) -> R {
        let groups: Vec<&str> = self
            .identity
            .as_ref()
            .map(|i| i.groups.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let record = Record {
            started_at_ms: self.started_at_ms,
            route: RouteRef {
                route_id: &self.route_id,
                route_name: &self.route_name,
                service_id: &self.service_id,
                service_name: &self.service_name,
                workspace,
            },
            method: self.method,
            method_text: &self.method_text,
            host: &self.host,
            path: &self.path,
            status: self.status,
            source: self.source,
            latency_total_us: self.latency_total_us,
            latency_upstream_us: self.latency_upstream_us,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            identity: self.identity.as_ref().map(|i| IdentityRef {
                auth_method: i.auth_method,
                trust: i.trust,
                consumer_id: &i.consumer_id,
                consumer_username: &i.consumer_username,
                consumer_custom_id: &i.consumer_custom_id,
                credential: &i.credential,
                consumer_groups: &groups,
                subject: &i.subject,
                issuer: &i.issuer,
                client_id: &i.client_id,
                anonymous: i.anonymous,
            }),
            client_address: &self.client_address,
            agent: self
                .agent
                .map(|(category, name)| AgentRef { category, name }),
            request_id: &self.request_id,
            trace_id: &self.trace_id,
            sample_weight: self.sample_weight,
        };
        f(&record)
    }
}

/// A property as text; invalid UTF-8 is replaced.
fn text(value: Option<Vec<u8>>) -> Option<String> {
    value.map(|v| match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A header value kept between phases: cut to a bound, lossy UTF-8.
fn keep(value: &[u8]) -> String {
    let cut = value.get(..MAX_HEADER_BYTES).unwrap_or(value);
    String::from_utf8_lossy(cut).into_owned()
}

fn bounded(value: &str, max: usize) -> String {
    value
        .get(..value.floor_char_boundary(max))
        .unwrap_or("")
        .to_string()
}
