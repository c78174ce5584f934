//! [`Row`]: one record resolved against the producer's dictionary, shaped
//! like the warehouse table (`kong_looker_requests`). Strings borrow from the
//! dictionary and the batch, so producing a row allocates nothing.
//!
//! Enumerations become the short lowercase words the table stores; they are
//! part of the contract with the Looker project.

use crate::coding::IdRef;
use crate::v1::{AgentCategory, AuthMethod, Method, ResponseSource, Trust};

/// One request, flat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row<'a> {
    /// When the request started, Unix ms UTC.
    pub started_at_ms: i64,
    /// Kong route id.
    pub route_id: Option<&'a str>,
    /// Kong route name.
    pub route_name: Option<&'a str>,
    /// Kong service id.
    pub service_id: Option<&'a str>,
    /// Kong service name.
    pub service_name: Option<&'a str>,
    /// Workspace or team label.
    pub workspace: Option<&'a str>,
    /// The method, e.g. `GET`, or the token of another method.
    pub method: Option<&'a str>,
    /// The Host header.
    pub host: Option<&'a str>,
    /// The path template.
    pub path: Option<&'a str>,
    /// HTTP status.
    pub status: Option<u16>,
    /// `upstream` or `kong`.
    pub response_source: Option<&'static str>,
    /// Total latency, microseconds.
    pub latency_total_us: u64,
    /// Upstream latency, microseconds.
    pub latency_upstream_us: Option<u64>,
    /// Request size, bytes.
    pub request_bytes: u64,
    /// Response size, bytes.
    pub response_bytes: u64,
    /// e.g. `key_auth`, `oidc`; `None` for anonymous requests.
    pub auth_method: Option<&'static str>,
    /// `verified` or `claimed`.
    pub trust: Option<&'static str>,
    /// Kong's anonymous consumer.
    pub anonymous: bool,
    /// Kong consumer id.
    pub consumer_id: Option<&'a str>,
    /// Kong consumer username.
    pub consumer_username: Option<&'a str>,
    /// Kong consumer custom id.
    pub consumer_custom_id: Option<&'a str>,
    /// Credential identifier.
    pub credential: Option<&'a str>,
    /// Consumer groups.
    pub consumer_groups: Groups<'a>,
    /// Subject.
    pub subject: Option<&'a str>,
    /// Issuer.
    pub issuer: Option<&'a str>,
    /// Client application id.
    pub client_id: Option<&'a str>,
    /// Client address after the privacy transform.
    pub client_address: Option<&'a str>,
    /// e.g. `browser`, `ai_crawler`.
    pub agent_category: Option<&'static str>,
    /// e.g. `GPTBot`.
    pub agent_name: Option<&'a str>,
    /// Kong request id.
    pub request_id: Option<IdRef<'a>>,
    /// W3C trace id.
    pub trace_id: Option<IdRef<'a>>,
    /// Requests this record stands for.
    pub sample_weight: f32,
}

/// An identity's consumer groups, resolved lazily.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Groups<'a> {
    pub(crate) ids: &'a [u32],
    pub(crate) strings: &'a [Box<str>],
}

impl<'a> Groups<'a> {
    /// No groups.
    pub const EMPTY: Groups<'static> = Groups {
        ids: &[],
        strings: &[],
    };

    /// The group names, in the order the producer sent them.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let strings = self.strings;
        self.ids
            .iter()
            .filter_map(move |&id| strings.get(id as usize).map(|s| &**s))
    }

    /// True without groups.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The table's word for a method, or `None` for [`Method::Unspecified`] and
/// [`Method::Other`] (whose text the endpoint carries).
pub fn method_name(m: Method) -> Option<&'static str> {
    Some(match m {
        Method::Unspecified | Method::Other => return None,
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Patch => "PATCH",
        Method::Options => "OPTIONS",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
    })
}

/// The method for a token, e.g. `GET`; [`Method::Other`] for unknown tokens.
pub fn method_from_name(token: &str) -> Method {
    match token {
        "" => Method::Unspecified,
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        "CONNECT" => Method::Connect,
        "TRACE" => Method::Trace,
        _ => Method::Other,
    }
}

/// The table's word for a response source.
pub fn source_name(s: ResponseSource) -> Option<&'static str> {
    match s {
        ResponseSource::Unspecified => None,
        ResponseSource::Upstream => Some("upstream"),
        ResponseSource::Kong => Some("kong"),
    }
}

/// The table's word for an auth method.
pub fn auth_method_name(m: AuthMethod) -> Option<&'static str> {
    Some(match m {
        AuthMethod::Unspecified => return None,
        AuthMethod::KongConsumer => "kong_consumer",
        AuthMethod::KeyAuth => "key_auth",
        AuthMethod::Basic => "basic",
        AuthMethod::Jwt => "jwt",
        AuthMethod::Oidc => "oidc",
        AuthMethod::Mtls => "mtls",
        AuthMethod::AwsSigv4 => "aws_sigv4",
        AuthMethod::Hmac => "hmac",
        AuthMethod::Oauth2 => "oauth2",
        AuthMethod::TrustedProxy => "trusted_proxy",
    })
}

/// The table's word for trust.
pub fn trust_name(t: Trust) -> Option<&'static str> {
    match t {
        Trust::Unspecified => None,
        Trust::Verified => Some("verified"),
        Trust::Claimed => Some("claimed"),
    }
}

/// The table's word for an agent category.
pub fn agent_category_name(c: AgentCategory) -> &'static str {
    match c {
        AgentCategory::Unspecified => "unknown",
        AgentCategory::Browser => "browser",
        AgentCategory::Cli => "cli",
        AgentCategory::Library => "library",
        AgentCategory::ApiTool => "api_tool",
        AgentCategory::Monitor => "monitor",
        AgentCategory::SearchCrawler => "search_crawler",
        AgentCategory::AiCrawler => "ai_crawler",
        AgentCategory::AiSearch => "ai_search",
        AgentCategory::AiAssistant => "ai_assistant",
        AgentCategory::McpClient => "mcp_client",
        AgentCategory::OtherBot => "other_bot",
    }
}
