//! One captured request, as the filter hands it to the builder.
//!
//! Every string is borrowed, so the filter can capture straight from host
//! buffers and the builder copies a value only the first time it sees it.
//! An empty string means absent.

use crate::v1::{AgentCategory, AuthMethod, Method, ResponseSource, Trust};

/// Route, service and workspace: where Kong sent the request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RouteRef<'a> {
    /// Kong route id.
    pub route_id: &'a str,
    /// Kong route name.
    pub route_name: &'a str,
    /// Kong service id.
    pub service_id: &'a str,
    /// Kong service name.
    pub service_name: &'a str,
    /// Workspace or team label from the filter config.
    pub workspace: &'a str,
}

/// Who called. Built only when there is some evidence of identity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdentityRef<'a> {
    /// The strongest evidence found.
    pub auth_method: AuthMethod,
    /// Verified by Kong, or claimed by the client.
    pub trust: Trust,
    /// Kong consumer id.
    pub consumer_id: &'a str,
    /// Kong consumer username.
    pub consumer_username: &'a str,
    /// Kong consumer custom id.
    pub consumer_custom_id: &'a str,
    /// Credential identifier (never the secret).
    pub credential: &'a str,
    /// Consumer groups; the builder keeps the first 32 non-empty ones.
    pub consumer_groups: &'a [&'a str],
    /// Subject: JWT `sub`, certificate DN, authenticated user id.
    pub subject: &'a str,
    /// Issuer: JWT `iss`, or `aws:<region>:<service>`.
    pub issuer: &'a str,
    /// Client application id.
    pub client_id: &'a str,
    /// Kong's anonymous consumer.
    pub anonymous: bool,
}

/// Client software family and product name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentRef<'a> {
    /// The family.
    pub category: AgentCategory,
    /// The product, e.g. "GPTBot".
    pub name: &'a str,
}

/// What Kong's AI Gateway recorded for one request, summed over its LLM
/// calls. Names are borrowed; an empty one is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AiRef<'a> {
    /// The proxied call's provider, e.g. `openai`.
    pub provider: &'a str,
    /// The model asked for.
    pub request_model: &'a str,
    /// The model that answered.
    pub response_model: &'a str,
    /// `oneshot`, `stream` or `realtime`.
    pub request_mode: &'a str,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
    /// Kong's cost estimate, in millionths of the configured price unit.
    pub cost_micros: u64,
    /// LLM latency, ms.
    pub llm_latency_ms: Option<u64>,
    /// Time to first token, ms.
    pub time_to_first_token_ms: Option<u64>,
    /// Semantic cache fetch latency, ms.
    pub cache_fetch_latency_ms: Option<u64>,
    /// Semantic cache status, lowercase.
    pub cache_status: &'a str,
    /// Embeddings model of a semantic match.
    pub embeddings_model: &'a str,
    /// Guardrail results that blocked.
    pub guardrail_blocks: u32,
    /// The first guardrail that blocked.
    pub guardrail: &'a str,
    /// MCP tool calls.
    pub mcp_tool_calls: u32,
    /// The first MCP tool called.
    pub mcp_tool: &'a str,
    /// LLM calls whose usage was added.
    pub calls: u32,
    /// Values that could not be kept whole.
    pub unreadable: u32,
}

/// One request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record<'a> {
    /// When the request started, Unix milliseconds UTC.
    pub started_at_ms: i64,
    /// Route, service and workspace.
    pub route: RouteRef<'a>,
    /// The method.
    pub method: Method,
    /// The method token when `method` is [`Method::Other`].
    pub method_text: &'a str,
    /// The Host header.
    pub host: &'a str,
    /// The path template.
    pub path: &'a str,
    /// HTTP status sent to the client; 0 when unknown.
    pub status: u16,
    /// Who produced the response.
    pub source: ResponseSource,
    /// Total latency, microseconds.
    pub latency_total_us: u64,
    /// Upstream latency, microseconds; `None` when Kong answered itself.
    pub latency_upstream_us: Option<u64>,
    /// Request size in bytes.
    pub request_bytes: u64,
    /// Response size in bytes.
    pub response_bytes: u64,
    /// Who called; `None` for an anonymous request.
    pub identity: Option<IdentityRef<'a>>,
    /// Client address after the privacy transform.
    pub client_address: &'a str,
    /// Client software; `None` without a User-Agent.
    pub agent: Option<AgentRef<'a>>,
    /// Kong request id.
    pub request_id: &'a str,
    /// W3C trace id.
    pub trace_id: &'a str,
    /// Requests this record stands for (1 / sampling rate); at least 1.
    pub sample_weight: f32,
    /// AI Gateway figures; `None` for a request without them.
    pub ai: Option<&'a AiRef<'a>>,
    /// What the producer already knows of this record's repeated parts.
    pub memo: Memo,
}

/// Keys by which a producer that already knows a record's endpoint,
/// identity or agent spares the builder rebuilding and hashing their lookup
/// keys: for a capturer, a route and caller met before, and the agent
/// table's rule. Zero means none.
///
/// The contract: for the life of one builder, every record with the same
/// nonzero key has the same value of that part. A key breaking it makes
/// the builder attribute records to the wrong endpoint, caller or agent;
/// it cannot make it fail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memo {
    /// Stands for the route, workspace, method, host and path together.
    pub endpoint: u64,
    /// Stands for the whole identity, or for there being none: a record
    /// without an identity and with this key tells the builder that the
    /// key stands for no caller.
    pub identity: u64,
    /// The record's caller is the one `identity` stands for, and
    /// [`Record::identity`] is left `None`. The builder takes the caller
    /// from what it remembers of the key ([`BatchBuilder::knows_identity`]),
    /// or refuses the record with [`AppendError::IdentityUnknown`], for the
    /// producer to send it again with its caller.
    ///
    /// [`BatchBuilder::knows_identity`]: crate::BatchBuilder::knows_identity
    /// [`AppendError::IdentityUnknown`]: crate::builder::AppendError::IdentityUnknown
    pub identity_by_key: bool,
    /// Stands for the agent's category and name.
    pub agent: u64,
    /// The builder's own hash of [`Record::client_address`], as
    /// [`BatchBuilder::knows_client`] gave it, which spares hashing the
    /// text again; zero: work it out.
    ///
    /// [`BatchBuilder::knows_client`]: crate::BatchBuilder::knows_client
    pub client: u64,
}

impl Default for Record<'_> {
    fn default() -> Self {
        Record {
            started_at_ms: 0,
            route: RouteRef::default(),
            method: Method::Unspecified,
            method_text: "",
            host: "",
            path: "",
            status: 0,
            source: ResponseSource::Unspecified,
            latency_total_us: 0,
            latency_upstream_us: None,
            request_bytes: 0,
            response_bytes: 0,
            identity: None,
            client_address: "",
            agent: None,
            request_id: "",
            trace_id: "",
            sample_weight: 1.0,
            ai: None,
            memo: Memo::default(),
        }
    }
}
