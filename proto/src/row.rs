//! [`Row`]: one record resolved against the producer's dictionary, shaped
//! like the warehouse table (`kong_looker_requests`). Strings borrow from the
//! dictionary and the batch, so producing a row allocates nothing.
//! [`OwnedRow`] is the same row with owned strings, made from the same list.
//!
//! Enumerations become the short lowercase words the table stores; they are
//! part of the contract with the Looker project.

use crate::coding::IdRef;
use crate::record::AiRef;
use crate::v1::{AgentCategory, AuthMethod, Method, ResponseSource, Trust};

// One list of columns makes both the borrowed row and the owned one, so
// they cannot drift apart. Each field's kind says how it borrows and owns:
// `text` is a string from the batch or dictionary, `word` an enumeration's
// table word, `groups` the consumer groups, `id` a request or trace id, and
// `copy(T)` a plain value.
macro_rules! rows {
    ($($(#[doc = $doc:literal])* $field:ident: $kind:ident $(($t:ty))?,)*) => {
        /// One request, flat.
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct Row<'a> {
            $($(#[doc = $doc])* pub $field: rows!(@borrowed $kind $($t)?),)*
        }

        /// A [`Row`] that owns its strings, for callers that keep rows past
        /// their batch (tests, tools). Ids are their text form.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct OwnedRow {
            $($(#[doc = $doc])* pub $field: rows!(@owned $kind $($t)?),)*
        }

        impl Row<'_> {
            /// The same row with owned strings.
            pub fn to_owned_row(&self) -> OwnedRow {
                OwnedRow {
                    $($field: rows!(@own $kind, self.$field),)*
                }
            }
        }
    };
    (@borrowed text) => { Option<&'a str> };
    (@borrowed word) => { Option<&'static str> };
    (@borrowed groups) => { Groups<'a> };
    (@borrowed id) => { Option<IdRef<'a>> };
    (@borrowed copy $t:ty) => { $t };
    (@owned text) => { Option<String> };
    (@owned word) => { Option<&'static str> };
    (@owned groups) => { Vec<String> };
    (@owned id) => { Option<String> };
    (@owned copy $t:ty) => { $t };
    (@own text, $v:expr) => { $v.map(String::from) };
    (@own groups, $v:expr) => { $v.iter().map(String::from).collect() };
    (@own id, $v:expr) => { $v.map(|id| id.to_string()) };
    (@own $other:ident, $v:expr) => { $v };
}

rows! {
    /// When the request started, Unix ms UTC.
    started_at_ms: copy(i64),
    /// Kong route id.
    route_id: text,
    /// Kong route name.
    route_name: text,
    /// Kong service id.
    service_id: text,
    /// Kong service name.
    service_name: text,
    /// Workspace or team label.
    workspace: text,
    /// The method, e.g. `GET`, or the token of another method.
    method: text,
    /// The Host header.
    host: text,
    /// The path template.
    path: text,
    /// HTTP status.
    status: copy(Option<u16>),
    /// `upstream` or `kong`.
    response_source: word,
    /// Total latency, microseconds.
    latency_total_us: copy(u64),
    /// Upstream latency, microseconds.
    latency_upstream_us: copy(Option<u64>),
    /// Request size, bytes.
    request_bytes: copy(u64),
    /// Response size, bytes.
    response_bytes: copy(u64),
    /// e.g. `key_auth`, `oidc`; `None` for anonymous requests.
    auth_method: word,
    /// `verified` or `claimed`.
    trust: word,
    /// Kong's anonymous consumer.
    anonymous: copy(bool),
    /// Kong consumer id.
    consumer_id: text,
    /// Kong consumer username.
    consumer_username: text,
    /// Kong consumer custom id.
    consumer_custom_id: text,
    /// Credential identifier.
    credential: text,
    /// Consumer groups.
    consumer_groups: groups,
    /// Subject.
    subject: text,
    /// Issuer.
    issuer: text,
    /// Client application id.
    client_id: text,
    /// Client address after the privacy transform.
    client_address: text,
    /// e.g. `browser`, `ai_crawler`.
    agent_category: word,
    /// e.g. `GPTBot`.
    agent_name: text,
    /// Kong request id.
    request_id: id,
    /// W3C trace id.
    trace_id: id,
    /// Requests this record stands for.
    sample_weight: copy(f32),
    /// AI Gateway: the proxied call's provider, e.g. `openai`.
    ai_provider: text,
    /// AI Gateway: the model asked for.
    ai_request_model: text,
    /// AI Gateway: the model that answered.
    ai_response_model: text,
    /// AI Gateway: `oneshot`, `stream` or `realtime`.
    ai_request_mode: text,
    /// AI Gateway: prompt tokens; `None` for a request without AI figures.
    ai_prompt_tokens: copy(Option<u64>),
    /// AI Gateway: completion tokens.
    ai_completion_tokens: copy(Option<u64>),
    /// AI Gateway: total tokens.
    ai_total_tokens: copy(Option<u64>),
    /// AI Gateway: cost, millionths of the configured price unit.
    ai_cost_micros: copy(Option<u64>),
    /// AI Gateway: LLM latency, ms.
    ai_llm_latency_ms: copy(Option<u64>),
    /// AI Gateway: time to first token, ms.
    ai_time_to_first_token_ms: copy(Option<u64>),
    /// AI Gateway: semantic cache status, e.g. `hit`.
    ai_cache_status: text,
    /// AI Gateway: semantic cache fetch latency, ms.
    ai_cache_fetch_latency_ms: copy(Option<u64>),
    /// AI Gateway: embeddings model of a semantic match.
    ai_embeddings_model: text,
    /// AI Gateway: guardrail results that blocked.
    ai_guardrail_blocks: copy(Option<u32>),
    /// AI Gateway: the first guardrail that blocked.
    ai_guardrail: text,
    /// AI Gateway: MCP tool calls.
    ai_mcp_tool_calls: copy(Option<u32>),
    /// AI Gateway: the first MCP tool called.
    ai_mcp_tool: text,
    /// AI Gateway: LLM calls added up.
    ai_calls: copy(Option<u32>),
    /// AI Gateway: values of the section that could not be kept whole.
    ai_unreadable: copy(Option<u32>),
}

impl<'a> Row<'a> {
    /// Fills the AI columns from a record's figures, as a reader of the
    /// batch would find them: empty names absent, counts present.
    pub fn set_ai(&mut self, ai: &AiRef<'a>) {
        let text = |s: &'a str| (!s.is_empty()).then_some(s);
        self.ai_provider = text(ai.provider);
        self.ai_request_model = text(ai.request_model);
        self.ai_response_model = text(ai.response_model);
        self.ai_request_mode = text(ai.request_mode);
        self.ai_prompt_tokens = Some(ai.prompt_tokens);
        self.ai_completion_tokens = Some(ai.completion_tokens);
        self.ai_total_tokens = Some(ai.total_tokens);
        self.ai_cost_micros = Some(ai.cost_micros);
        self.ai_llm_latency_ms = ai.llm_latency_ms;
        self.ai_time_to_first_token_ms = ai.time_to_first_token_ms;
        self.ai_cache_status = text(ai.cache_status);
        self.ai_cache_fetch_latency_ms = ai.cache_fetch_latency_ms;
        self.ai_embeddings_model = text(ai.embeddings_model);
        self.ai_guardrail_blocks = Some(ai.guardrail_blocks);
        self.ai_guardrail = text(ai.guardrail);
        self.ai_mcp_tool_calls = Some(ai.mcp_tool_calls);
        self.ai_mcp_tool = text(ai.mcp_tool);
        self.ai_calls = Some(ai.calls);
        self.ai_unreadable = Some(ai.unreadable);
    }
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
pub fn method_from_name<T: AsRef<[u8]> + ?Sized>(token: &T) -> Method {
    match token.as_ref() {
        b"" => Method::Unspecified,
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" => Method::Delete,
        b"PATCH" => Method::Patch,
        b"OPTIONS" => Method::Options,
        b"CONNECT" => Method::Connect,
        b"TRACE" => Method::Trace,
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
