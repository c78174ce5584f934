//! The configuration every host reads: the JSON Kong passes the filter
//! from `filter_chains[].filters[].config` (and the plugin server as its
//! plugin config), its defaults, and the checks that refuse a bad one with
//! the field and the reason.
//!
//! Every field has a default except `collector`, so `{"collector": "..."}`
//! is a complete config. Each section is laid out the same way: the struct,
//! its `Default` (one default per field, next to the field), its bounds,
//! and its reader. `kong_looker.meta.json` describes the same shape as a
//! JSON Schema (draft-4) for Kong's admin API; a unit test keeps the two in
//! step.

mod fields;

use core::ops::RangeInclusive;

use fields::Object;

/// Shortest signing or hashing key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;
/// Longest string accepted for names and labels.
const MAX_LABEL_BYTES: usize = 256;

/// The whole configuration of one filter entry.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct Config {
    /// Where the collector listens: `ip:port`, `host:port`, `[v6]:port` or
    /// `unix:/path`. Required.
    pub collector: String,
    /// Host header (and TLS server name) for the collector; empty (the
    /// default) means the collector address.
    pub collector_host: String,
    /// Speak HTTPS to the collector. Default off.
    pub tls: bool,
    /// Key for signing batches (HMAC-SHA256), shared with the collector.
    /// Empty (the default): batches are sent unsigned.
    pub signing_key: String,
    /// Timeout for one delivery to the collector, milliseconds; default
    /// [`Config::TIMEOUT_MS`].
    pub timeout_ms: u32,
    /// Workspace or team label stamped on every record; Looker's access
    /// filters use it. Default empty.
    pub workspace: String,
    /// When to cut a batch.
    pub batch: BatchConfig,
    /// Cap on buffered plus pending batch bytes in one worker; default
    /// [`Config::MAX_BUFFER_BYTES`].
    pub max_buffer_bytes: u32,
    /// Cap on the session dictionary's memory in one worker; default
    /// [`Config::MAX_DICTIONARY_BYTES`]. Past it the dictionary starts
    /// again, and the next batches define again what they use.
    pub max_dictionary_bytes: u32,
    /// Cap on the memory of one filter chain's caches of resolved
    /// identities (two thirds) and decoded tokens (a third), their tables
    /// included; default [`Config::MAX_CACHE_BYTES`]. Each may hold twice
    /// its share for a moment after it starts afresh.
    pub max_cache_bytes: u32,
    /// Fraction of requests recorded, in (0, 1], default 1. 5xx, 401 and
    /// 403 are always recorded; kept records carry the weight 1/rate.
    pub sample_rate: f64,
    /// Send Kong's request id (`ngx.kong_request_id`), so the collector can
    /// match a record with the same request's http-log entry. Off by
    /// default: 16 random bytes per record more than double the wire size,
    /// and only a deployment that also runs http-log needs them.
    pub request_id: bool,
    /// Read ai-proxy's `X-Kong-LLM-Model` response header (and the
    /// semantic cache's `X-Cache-Status` beside it): the provider and model
    /// of the request's LLM call. One host call more per request, so off by
    /// default; turn it on for AI routes. Tokens and cost are not in any
    /// header: the plugin server and http-log carry them.
    pub ai_model_header: bool,
    /// Export metrics through the proxy-wasm metrics API (Kong 3.8+).
    /// Default on.
    pub metrics: bool,
    /// Which identity sources to read.
    pub identity: IdentityConfig,
    /// What is kept of the client address and identity values.
    pub privacy: PrivacyConfig,
    /// Path templates.
    pub paths: PathsConfig,
}

impl Config {
    /// Default of `timeout_ms`.
    pub const TIMEOUT_MS: u32 = 5_000;
    /// Bounds of `timeout_ms`.
    const TIMEOUT_MS_RANGE: RangeInclusive<u32> = 1..=600_000;
    /// Default of `max_buffer_bytes`.
    pub const MAX_BUFFER_BYTES: u32 = 4 * 1024 * 1024;
    /// Bounds of `max_buffer_bytes`.
    const MAX_BUFFER_BYTES_RANGE: RangeInclusive<u32> = 64 * 1024..=1024 * 1024 * 1024;
    /// Default of `max_dictionary_bytes`: room for tens of thousands of
    /// consumers and a couple of hundred thousand client addresses
    /// (`bench/RESULTS.md`, production cardinality). Traffic of lower
    /// cardinality holds only what it uses.
    pub const MAX_DICTIONARY_BYTES: u32 = 16 * 1024 * 1024;
    /// Bounds of `max_dictionary_bytes`.
    const MAX_DICTIONARY_BYTES_RANGE: RangeInclusive<u32> = 64 * 1024..=1024 * 1024 * 1024;
    /// Default of `max_cache_bytes`: room for the identities and tokens of
    /// some 50,000 consumers (`bench/RESULTS.md`, production cardinality).
    /// Traffic of lower cardinality holds only what it uses.
    pub const MAX_CACHE_BYTES: u32 = 12 * 1024 * 1024;
    /// Bounds of `max_cache_bytes`.
    const MAX_CACHE_BYTES_RANGE: RangeInclusive<u32> = 64 * 1024..=1024 * 1024 * 1024;

    /// Parses and checks a config.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let value = serde_json::from_slice(bytes).map_err(|e| ConfigError {
            field: ".".into(),
            reason: strip_position(&e.to_string()),
        })?;
        let config = Config::read(Object::document(value)?)?;
        config.check()?;
        Ok(config)
    }

    /// Reads every field, with its default where absent.
    fn read(mut doc: Object) -> Result<Config, ConfigError> {
        let config = Config {
            collector: doc.require("collector")?.string()?,
            collector_host: doc.string("collector_host", "")?,
            tls: doc.boolean("tls", false)?,
            signing_key: doc.secret("signing_key")?,
            timeout_ms: doc.whole("timeout_ms", Config::TIMEOUT_MS)?,
            workspace: doc.string("workspace", "")?,
            batch: BatchConfig::read(doc.object("batch")?)?,
            max_buffer_bytes: doc.whole("max_buffer_bytes", Config::MAX_BUFFER_BYTES)?,
            max_dictionary_bytes: doc
                .whole("max_dictionary_bytes", Config::MAX_DICTIONARY_BYTES)?,
            max_cache_bytes: doc.whole("max_cache_bytes", Config::MAX_CACHE_BYTES)?,
            sample_rate: doc.number("sample_rate", 1.0)?,
            request_id: doc.boolean("request_id", false)?,
            ai_model_header: doc.boolean("ai_model_header", false)?,
            metrics: doc.boolean("metrics", true)?,
            identity: IdentityConfig::read(doc.object("identity")?)?,
            privacy: PrivacyConfig::read(doc.object("privacy")?)?,
            paths: PathsConfig::read(doc.object("paths")?)?,
        };
        doc.finish()?;
        Ok(config)
    }

    /// The range and consistency checks, once every field has its type.
    fn check(&self) -> Result<(), ConfigError> {
        let fail = |field: &str, reason: String| {
            Err(ConfigError {
                field: field.into(),
                reason,
            })
        };
        if let Err(reason) = check_collector(&self.collector) {
            return fail("collector", reason);
        }
        range("timeout_ms", self.timeout_ms, Config::TIMEOUT_MS_RANGE)?;
        self.batch.check()?;
        range(
            "max_buffer_bytes",
            self.max_buffer_bytes,
            Config::MAX_BUFFER_BYTES_RANGE,
        )?;
        range(
            "max_dictionary_bytes",
            self.max_dictionary_bytes,
            Config::MAX_DICTIONARY_BYTES_RANGE,
        )?;
        range(
            "max_cache_bytes",
            self.max_cache_bytes,
            Config::MAX_CACHE_BYTES_RANGE,
        )?;
        if self.max_buffer_bytes < self.batch.max_bytes {
            return fail(
                "max_buffer_bytes",
                format!(
                    "{} is smaller than batch.max_bytes ({})",
                    self.max_buffer_bytes, self.batch.max_bytes
                ),
            );
        }
        if !(self.sample_rate > 0.0 && self.sample_rate <= 1.0) {
            return fail("sample_rate", "must be more than 0 and at most 1".into());
        }
        self.paths.check()?;
        label("workspace", &self.workspace)?;
        label("collector_host", &self.collector_host)?;
        self.identity.check()?;
        if !self.signing_key.is_empty() && self.signing_key.len() < MIN_KEY_BYTES {
            return fail("signing_key", format!("shorter than {MIN_KEY_BYTES} bytes"));
        }
        self.privacy.check()
    }
}

/// When a batch is cut: whichever limit is reached first.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct BatchConfig {
    /// Records per batch.
    pub max_records: u32,
    /// Encoded bytes per batch.
    pub max_bytes: u32,
    /// Longest a record waits before its batch is sent, milliseconds.
    pub flush_interval_ms: u32,
    /// Batches awaiting an answer at once (the Wasm filter keeps one
    /// whatever this says: its engine leaks a connection slot per extra
    /// call in flight).
    pub max_in_flight: u32,
    /// How long a failing batch is retried before its records are dropped,
    /// milliseconds.
    pub max_retry_age_ms: u32,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            // The filter sends one batch per 100 ms tick at most, so a
            // batch holds a tenth of a second of a busy worker's traffic:
            // 50,000 records/s at most.
            max_records: 5_000,
            max_bytes: 512 * 1024,
            flush_interval_ms: 1_000,
            max_in_flight: 4,
            max_retry_age_ms: 300_000,
        }
    }
}

impl BatchConfig {
    const MAX_RECORDS: RangeInclusive<u32> = 1..=100_000;
    const MAX_BYTES: RangeInclusive<u32> = 1024..=8 * 1024 * 1024;
    const FLUSH_INTERVAL_MS: RangeInclusive<u32> = 10..=3_600_000;
    const MAX_IN_FLIGHT: RangeInclusive<u32> = 1..=64;
    const MAX_RETRY_AGE_MS: RangeInclusive<u32> = 0..=86_400_000;

    fn read(mut obj: Object) -> Result<Self, ConfigError> {
        let d = BatchConfig::default();
        let batch = BatchConfig {
            max_records: obj.whole("max_records", d.max_records)?,
            max_bytes: obj.whole("max_bytes", d.max_bytes)?,
            flush_interval_ms: obj.whole("flush_interval_ms", d.flush_interval_ms)?,
            max_in_flight: obj.whole("max_in_flight", d.max_in_flight)?,
            max_retry_age_ms: obj.whole("max_retry_age_ms", d.max_retry_age_ms)?,
        };
        obj.finish()?;
        Ok(batch)
    }

    fn check(&self) -> Result<(), ConfigError> {
        range("batch.max_records", self.max_records, Self::MAX_RECORDS)?;
        range("batch.max_bytes", self.max_bytes, Self::MAX_BYTES)?;
        range(
            "batch.flush_interval_ms",
            self.flush_interval_ms,
            Self::FLUSH_INTERVAL_MS,
        )?;
        range(
            "batch.max_in_flight",
            self.max_in_flight,
            Self::MAX_IN_FLIGHT,
        )?;
        range(
            "batch.max_retry_age_ms",
            self.max_retry_age_ms,
            Self::MAX_RETRY_AGE_MS,
        )
    }
}

/// Identity sources, each switchable.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct IdentityConfig {
    /// Read Kong's `X-Consumer-*` and `X-Credential-Identifier` headers.
    pub consumer_headers: bool,
    /// An auth plugin guards this chain, so identity that reached the filter
    /// was checked by Kong: recorded as verified rather than claimed.
    pub auth_plugin: bool,
    /// Headers that carry an API key (key-auth's `key_names`); only their
    /// presence is used, never their value.
    pub key_names: Vec<String>,
    /// Read JWT/OIDC bearer tokens.
    pub jwt: bool,
    /// The claim that holds groups.
    pub groups_claim: String,
    /// Read the client certificate.
    pub mtls: bool,
    /// Read AWS SigV4 credentials.
    pub sigv4: bool,
    /// Read the HTTP Basic user name.
    pub basic: bool,
    /// Identity headers set by a trusted identity-aware proxy in front of
    /// Kong, e.g. `X-Forwarded-User`; the first present is the subject.
    /// Trusted only when listed here.
    pub trusted_headers: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            consumer_headers: true,
            auth_plugin: false,
            key_names: vec!["apikey".into()],
            jwt: true,
            groups_claim: "groups".into(),
            mtls: true,
            sigv4: true,
            basic: true,
            trusted_headers: Vec::new(),
        }
    }
}

impl IdentityConfig {
    fn read(mut obj: Object) -> Result<Self, ConfigError> {
        let d = IdentityConfig::default();
        let identity = IdentityConfig {
            consumer_headers: obj.boolean("consumer_headers", d.consumer_headers)?,
            auth_plugin: obj.boolean("auth_plugin", d.auth_plugin)?,
            key_names: obj.strings("key_names", d.key_names)?,
            jwt: obj.boolean("jwt", d.jwt)?,
            groups_claim: obj.string("groups_claim", &d.groups_claim)?,
            mtls: obj.boolean("mtls", d.mtls)?,
            sigv4: obj.boolean("sigv4", d.sigv4)?,
            basic: obj.boolean("basic", d.basic)?,
            trusted_headers: obj.strings("trusted_headers", d.trusted_headers)?,
        };
        obj.finish()?;
        Ok(identity)
    }

    fn check(&self) -> Result<(), ConfigError> {
        label("identity.groups_claim", &self.groups_claim)?;
        header_names("identity.key_names", &self.key_names)?;
        header_names("identity.trusted_headers", &self.trusted_headers)
    }
}

/// Privacy settings.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct PrivacyConfig {
    /// `keep` (the default), `truncate` (to /24 or /48) or `hash` (needs
    /// `hash_key`).
    pub client_address: AddressMode,
    /// Replace consumer names, custom ids, credentials, subjects and client
    /// ids by keyed hashes (needs `hash_key`). Default off.
    pub pseudonymize: bool,
    /// Key for the hashes, at least [`MIN_KEY_BYTES`] bytes. Default none.
    pub hash_key: String,
}

impl PrivacyConfig {
    fn read(mut obj: Object) -> Result<Self, ConfigError> {
        let d = PrivacyConfig::default();
        let client_address = match obj.take("client_address") {
            None => d.client_address,
            Some(f) => f.choice(&AddressMode::CHOICES)?,
        };
        let privacy = PrivacyConfig {
            client_address,
            pseudonymize: obj.boolean("pseudonymize", d.pseudonymize)?,
            hash_key: obj.secret("hash_key")?,
        };
        obj.finish()?;
        Ok(privacy)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let needs_key = self.client_address == AddressMode::Hash || self.pseudonymize;
        if needs_key && self.hash_key.len() < MIN_KEY_BYTES {
            return Err(ConfigError {
                field: "privacy.hash_key".into(),
                reason: format!(
                    "hashing is on (client_address \"hash\" or pseudonymize) and the key is shorter than {MIN_KEY_BYTES} bytes"
                ),
            });
        }
        Ok(())
    }
}

/// How the client address is recorded: the filter's
/// `privacy.client_address` and the collector's `--client-address`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(test, derive(serde::Serialize))]
#[cfg_attr(test, serde(rename_all = "lowercase"))]
pub enum AddressMode {
    /// As the client connected from.
    #[default]
    Keep,
    /// Its network: /24 for IPv4, /48 for IPv6.
    Truncate,
    /// A keyed hash (needs a hash key).
    Hash,
}

impl AddressMode {
    /// The names the config and the collector's flag take.
    pub const CHOICES: [(&'static str, AddressMode); 3] = [
        ("keep", AddressMode::Keep),
        ("truncate", AddressMode::Truncate),
        ("hash", AddressMode::Hash),
    ];

    /// The mode named `name`, if any.
    pub fn named(name: &str) -> Option<AddressMode> {
        Self::CHOICES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
    }
}

/// Path templates.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct PathsConfig {
    /// Templates by path prefix; the longest matching prefix wins.
    pub templates: Vec<TemplateConfig>,
    /// Distinct templates per worker; paths beyond become `{other}`.
    pub max_templates: u32,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            templates: Vec::new(),
            max_templates: 2_000,
        }
    }
}

impl PathsConfig {
    /// Most prefix templates one filter entry takes.
    const MAX_TEMPLATE_RULES: usize = 1_000;
    const MAX_TEMPLATES: RangeInclusive<u32> = 1..=100_000;
    /// Longest template text, bytes.
    const MAX_TEMPLATE_BYTES: usize = 2048;

    fn read(mut obj: Object) -> Result<Self, ConfigError> {
        let templates = match obj.take("templates") {
            None => Vec::new(),
            Some(f) => {
                let items = f.items()?;
                // Checked before reading, so a huge list costs nothing more.
                if items.len() > Self::MAX_TEMPLATE_RULES {
                    return Err(ConfigError {
                        field: "paths.templates".into(),
                        reason: format!("more than {} templates", Self::MAX_TEMPLATE_RULES),
                    });
                }
                items
                    .into_iter()
                    .map(|item| TemplateConfig::read(item.object()?))
                    .collect::<Result<_, _>>()?
            }
        };
        let paths = PathsConfig {
            templates,
            max_templates: obj.whole("max_templates", PathsConfig::default().max_templates)?,
        };
        obj.finish()?;
        Ok(paths)
    }

    fn check(&self) -> Result<(), ConfigError> {
        range(
            "paths.max_templates",
            self.max_templates,
            Self::MAX_TEMPLATES,
        )?;
        for (i, t) in self.templates.iter().enumerate() {
            if !t.prefix.starts_with('/') {
                return Err(ConfigError {
                    field: format!("paths.templates[{i}].prefix"),
                    reason: format!("{:?} does not start with /", t.prefix),
                });
            }
            if t.template.is_empty() || t.template.len() > Self::MAX_TEMPLATE_BYTES {
                return Err(ConfigError {
                    field: format!("paths.templates[{i}].template"),
                    reason: format!("must be 1 to {} bytes", Self::MAX_TEMPLATE_BYTES),
                });
            }
        }
        Ok(())
    }
}

/// One prefix template.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(test, derive(serde::Serialize))]
pub struct TemplateConfig {
    /// Path prefix, e.g. `/v1/users/`.
    pub prefix: String,
    /// What matching paths are recorded as, e.g. `/v1/users/{user}`.
    pub template: String,
}

impl TemplateConfig {
    fn read(mut obj: Object) -> Result<Self, ConfigError> {
        let template = TemplateConfig {
            prefix: obj.require("prefix")?.string()?,
            template: obj.require("template")?.string()?,
        };
        obj.finish()?;
        Ok(template)
    }
}

/// Why a config was refused: the field (a dotted path) and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field, e.g. `batch.max_records`; `.` for the document itself.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.field == "." {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

fn range(field: &str, value: u32, bounds: RangeInclusive<u32>) -> Result<(), ConfigError> {
    if !bounds.contains(&value) {
        return Err(ConfigError {
            field: field.into(),
            reason: format!("{value} is outside {}..={}", bounds.start(), bounds.end()),
        });
    }
    Ok(())
}

fn label(field: &str, value: &str) -> Result<(), ConfigError> {
    if value.len() > MAX_LABEL_BYTES {
        return Err(ConfigError {
            field: field.into(),
            reason: format!("longer than {MAX_LABEL_BYTES} bytes"),
        });
    }
    Ok(())
}

/// Most header names one list takes.
const MAX_HEADER_NAMES: usize = 32;
/// Longest header name, bytes.
const MAX_HEADER_NAME_BYTES: usize = 128;

fn header_names(field: &str, names: &[String]) -> Result<(), ConfigError> {
    if names.len() > MAX_HEADER_NAMES {
        return Err(ConfigError {
            field: field.into(),
            reason: format!("more than {MAX_HEADER_NAMES} headers"),
        });
    }
    for (i, name) in names.iter().enumerate() {
        let token = !name.is_empty()
            && name.len() <= MAX_HEADER_NAME_BYTES
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !token {
            return Err(ConfigError {
                field: format!("{field}[{i}]"),
                reason: format!("{name:?} is not a header name"),
            });
        }
    }
    Ok(())
}

/// Checks the collector address has one of the shapes dispatch accepts.
fn check_collector(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err("is empty".into());
    }
    if let Some(path) = addr.strip_prefix("unix:") {
        return if path.starts_with('/') {
            Ok(())
        } else {
            Err(format!("{addr:?}: a unix socket needs an absolute path"))
        };
    }
    if addr.contains("://") || addr.contains('/') {
        return Err(format!(
            "{addr:?}: give host:port (or unix:/path), not a URL"
        ));
    }
    let port = match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => port,
        _ => return Err(format!("{addr:?} has no port")),
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{addr:?}: bad port {port:?}")),
    }
}

/// Line and column mean little in a one-line config; drop them.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(msg).to_string(),
        None => msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn err(json: &str) -> ConfigError {
        Config::parse(json.as_bytes()).unwrap_err()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn collector_alone_is_a_complete_config() {
        let c = Config::parse(br#"{"collector":"10.0.0.5:9400"}"#).unwrap();
        assert_eq!(c.batch.max_records, 5000);
        assert_eq!(c.batch.max_bytes, 512 * 1024);
        assert_eq!(c.batch.flush_interval_ms, 1000);
        assert_eq!(c.max_buffer_bytes, 4 * 1024 * 1024);
        assert_eq!(c.max_cache_bytes, 12 * 1024 * 1024);
        assert_eq!(c.sample_rate, 1.0);
        assert!(c.identity.jwt && c.identity.consumer_headers && !c.identity.auth_plugin);
        assert_eq!(c.privacy.client_address, AddressMode::Keep);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn missing_collector_is_named() {
        let e = err("{}");
        assert_eq!(e.to_string(), "collector: is required");
        let e = err(r#"{"collector":"a:1","paths":{"templates":[{"prefix":"/v1/"}]}}"#);
        assert_eq!(e.to_string(), "paths.templates[0].template: is required");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn unknown_field_is_named_with_its_path() {
        let e = err(r#"{"collector":"a:1","batch":{"max_recs":5}}"#);
        assert_eq!(e.field, "batch.max_recs", "{e}");
        assert!(e.reason.starts_with("unknown field"), "{e}");
        let e = err(r#"{"collector":"a:1","colector":"x"}"#);
        assert_eq!(e.field, "colector", "{e}");
        // Found by the config fuzz target: an empty name is still named.
        assert_eq!(err(r#"{"collector":"a:1","":1}"#).field, r#""""#);
        assert_eq!(
            err(r#"{"collector":"a:1","identity":{"":1}}"#).field,
            r#"identity."""#
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn wrong_type_is_named_with_its_path() {
        let e = err(r#"{"collector":"a:1","batch":{"max_records":"many"}}"#);
        assert_eq!(e.field, "batch.max_records");
        assert!(e.reason.contains("invalid type"), "{e}");
        let e = err(r#"{"collector":"a:1","privacy":{"client_address":"blur"}}"#);
        assert_eq!(e.field, "privacy.client_address");
        assert_eq!(
            err(r#"{"collector":"a:1","privacy":{"client_address":"blur"}}"#).reason,
            r#""blur" is not one of keep, truncate, hash"#
        );
        for (json, reason) in [
            (
                r#"{"collector":"a:1","timeout_ms":-1}"#,
                "found a negative number",
            ),
            (
                r#"{"collector":"a:1","timeout_ms":1.5}"#,
                "found a fractional number",
            ),
            (r#"{"collector":"a:1","timeout_ms":null}"#, "found null"),
            (
                r#"{"collector":"a:1","timeout_ms":4294967296}"#,
                "larger than 4294967295",
            ),
            (
                r#"{"collector":"a:1","timeout_ms":{"a":1}}"#,
                "found an object",
            ),
        ] {
            let e = err(json);
            assert_eq!(e.field, "timeout_ms", "{json}");
            assert!(e.reason.ends_with(reason), "{json}: {e}");
        }
        let e = err(r#"{"collector":"a:1","identity":{"key_names":["apikey",7]}}"#);
        assert_eq!(
            e.to_string(),
            "identity.key_names[1]: invalid type: expected a string, found a number"
        );
        let e = err(r#"{"collector":"a:1","batch":[]}"#);
        assert_eq!(
            e.to_string(),
            "batch: invalid type: expected an object, found an array"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn every_field_is_read() {
        let c = Config::parse(
            br#"{"collector":"10.0.0.5:9400","collector_host":"c.internal","tls":true,
            "signing_key":"0123456789abcdef!","timeout_ms":7000,"workspace":"payments",
            "batch":{"max_records":500,"max_bytes":65536,"flush_interval_ms":250,
                     "max_in_flight":2,"max_retry_age_ms":60000},
            "max_buffer_bytes":1048576,"max_cache_bytes":262144,"sample_rate":0.25,
            "request_id":true,"metrics":false,
            "identity":{"consumer_headers":false,"auth_plugin":true,"key_names":["x-api-key"],
                        "jwt":false,"groups_claim":"roles","mtls":false,"sigv4":false,
                        "basic":false,"trusted_headers":["X-Forwarded-User"]},
            "privacy":{"client_address":"truncate","pseudonymize":true,
                       "hash_key":"fedcba9876543210"},
            "paths":{"templates":[{"prefix":"/v1/users/","template":"/v1/users/{user}"}],
                     "max_templates":50}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                c.collector_host.as_str(),
                c.tls,
                c.signing_key.as_str(),
                c.timeout_ms
            ),
            ("c.internal", true, "0123456789abcdef!", 7000)
        );
        assert_eq!(c.workspace, "payments");
        assert_eq!(
            c.batch,
            BatchConfig {
                max_records: 500,
                max_bytes: 65536,
                flush_interval_ms: 250,
                max_in_flight: 2,
                max_retry_age_ms: 60000
            }
        );
        assert_eq!(
            (c.max_buffer_bytes, c.max_cache_bytes, c.sample_rate),
            (1_048_576, 262_144, 0.25)
        );
        assert!(c.request_id && !c.metrics);
        let i = &c.identity;
        assert!(!i.consumer_headers && i.auth_plugin && !i.jwt && !i.mtls && !i.sigv4 && !i.basic);
        assert_eq!(
            (i.key_names.as_slice(), i.groups_claim.as_str()),
            (&["x-api-key".to_string()][..], "roles")
        );
        assert_eq!(i.trusted_headers, ["X-Forwarded-User"]);
        assert_eq!(c.privacy.client_address, AddressMode::Truncate);
        assert!(c.privacy.pseudonymize);
        assert_eq!(c.privacy.hash_key, "fedcba9876543210");
        assert_eq!(c.paths.max_templates, 50);
        assert_eq!(c.paths.templates[0].template, "/v1/users/{user}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn out_of_range_numbers_are_refused() {
        for (json, field) in [
            (
                r#"{"collector":"a:1","batch":{"max_records":0}}"#,
                "batch.max_records",
            ),
            (
                r#"{"collector":"a:1","batch":{"max_bytes":10}}"#,
                "batch.max_bytes",
            ),
            (r#"{"collector":"a:1","sample_rate":0}"#, "sample_rate"),
            (r#"{"collector":"a:1","sample_rate":1.5}"#, "sample_rate"),
            (
                r#"{"collector":"a:1","max_cache_bytes":1024}"#,
                "max_cache_bytes",
            ),
            (
                r#"{"collector":"a:1","max_buffer_bytes":100000,"batch":{"max_bytes":200000}}"#,
                "max_buffer_bytes",
            ),
            (
                r#"{"collector":"a:1","paths":{"max_templates":0}}"#,
                "paths.max_templates",
            ),
        ] {
            assert_eq!(err(json).field, field, "{json}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn collector_shapes() {
        for ok in [
            "10.0.0.5:9400",
            "collector.internal:80",
            "[::1]:9400",
            "unix:/run/c.sock",
        ] {
            assert!(check_collector(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "10.0.0.5",
            "http://c:80",
            "c:0",
            "c:99999",
            "unix:rel.sock",
            ":80",
        ] {
            assert!(check_collector(bad).is_err(), "{bad}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_key_of_the_wrong_type_is_not_quoted() {
        let e = err(r#"{"collector":"a:1","signing_key":918273645546372819}"#);
        assert_eq!(e.field, "signing_key");
        assert!(!e.to_string().contains("918273645546372819"), "{e}");
        let e = err(r#"{"collector":"a:1","privacy":{"hash_key":918273645546372819}}"#);
        assert_eq!(e.field, "privacy.hash_key");
        assert!(!e.to_string().contains("918273645546372819"), "{e}");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn hashing_needs_a_key() {
        let e = err(r#"{"collector":"a:1","privacy":{"client_address":"hash"}}"#);
        assert_eq!(e.field, "privacy.hash_key");
        let e = err(r#"{"collector":"a:1","privacy":{"pseudonymize":true,"hash_key":"short"}}"#);
        assert_eq!(e.field, "privacy.hash_key");
        Config::parse(
            br#"{"collector":"a:1","privacy":{"pseudonymize":true,"hash_key":"0123456789abcdef"}}"#,
        )
        .unwrap();
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn bad_header_names_and_json_are_refused() {
        let e =
            err(r#"{"collector":"a:1","identity":{"trusted_headers":["X-User","bad header"]}}"#);
        assert_eq!(e.field, "identity.trusted_headers[1]");
        assert_eq!(err("not json").field, ".");
        assert_eq!(err(r#"{"collector":"a:1"} trailing"#).field, ".");
        assert_eq!(err(r#""a string""#).field, ".");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn template_lists_are_bounded() {
        let list = |n: usize| {
            let t = vec![r#"{"prefix":"/a/","template":"/a/{x}"}"#; n].join(",");
            format!(r#"{{"collector":"a:1","paths":{{"templates":[{t}]}}}}"#)
        };
        assert_eq!(
            Config::parse(list(1000).as_bytes())
                .unwrap()
                .paths
                .templates
                .len(),
            1000
        );
        assert_eq!(
            err(&list(1001)).to_string(),
            "paths.templates: more than 1000 templates"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn template_prefixes_must_be_paths() {
        let e = err(
            r#"{"collector":"a:1","paths":{"templates":[{"prefix":"v1","template":"/v1/{x}"}]}}"#,
        );
        assert_eq!(e.field, "paths.templates[0].prefix");
    }

    /// The JSON Schema in `kong_looker.meta.json` and this struct describe
    /// the same fields with the same defaults.
    #[test]
    fn meta_schema_matches_the_struct() {
        let meta: serde_json::Value =
            serde_json::from_str(include_str!("../../kong_looker.meta.json")).unwrap();
        let schema = &meta["config_schema"];
        let mut config = Config::parse(br#"{"collector":"a:1"}"#).unwrap();
        config.collector.clear();
        let defaults = serde_json::to_value(&config).unwrap();
        compare(schema, &defaults, "");
    }

    fn compare(schema: &serde_json::Value, value: &serde_json::Value, path: &str) {
        let props = schema["properties"].as_object().unwrap();
        let fields = value.as_object().unwrap();
        assert_eq!(
            schema["additionalProperties"],
            serde_json::Value::Bool(false),
            "{path}: the schema must refuse unknown fields, as the filter does"
        );
        let names: Vec<_> = props.keys().collect();
        let mut expected: Vec<_> = fields.keys().collect();
        expected.sort();
        let mut got = names.clone();
        got.sort();
        assert_eq!(got, expected, "{path}: schema and struct fields differ");
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            assert!(
                prop["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{here} has no description"
            );
            if prop["type"] == "object" && prop.get("properties").is_some() {
                compare(prop, &fields[name], &here);
            } else if here != ".collector" {
                assert_eq!(prop["default"], fields[name], "{here}: default differs");
            }
        }
    }
}
