//! The requests table's row: the column list that is the contract with
//! `looker/`, and [`RowView`], one row borrowed from wherever it came from
//! (a filter batch resolved against its dictionary, or a Kong http-log
//! entry), so the stores write both kinds through one code path.

use kong_looker_proto::coding::IdRef;
use kong_looker_proto::row::Groups;

/// The columns of `kong_looker_requests`, in table order. Both stores'
/// migrations create exactly these; a test compares them.
pub const REQUEST_COLUMNS: [&str; 54] = [
    "started_at",
    "workspace",
    "route_id",
    "route_name",
    "service_id",
    "service_name",
    "method",
    "host",
    "path",
    "status",
    "response_source",
    "latency_total_us",
    "latency_upstream_us",
    "request_bytes",
    "response_bytes",
    "auth_method",
    "trust",
    "anonymous",
    "consumer_id",
    "consumer_username",
    "consumer_custom_id",
    "credential",
    "consumer_groups",
    "subject",
    "issuer",
    "client_id",
    "client_address",
    "agent_category",
    "agent_name",
    "request_id",
    "trace_id",
    "sample_weight",
    "origin",
    "instance_id",
    "batch_sequence",
    "ai_provider",
    "ai_request_model",
    "ai_response_model",
    "ai_request_mode",
    "ai_prompt_tokens",
    "ai_completion_tokens",
    "ai_total_tokens",
    "ai_cost_micros",
    "ai_llm_latency_ms",
    "ai_time_to_first_token_ms",
    "ai_cache_status",
    "ai_cache_fetch_latency_ms",
    "ai_embeddings_model",
    "ai_guardrail_blocks",
    "ai_guardrail",
    "ai_mcp_tool_calls",
    "ai_mcp_tool",
    "ai_calls",
    "ai_unreadable",
];

/// Where a row came from; the `origin` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The kong_looker filter.
    Filter,
    /// Kong's http-log plugin only: the filter never saw the request, or is
    /// not deployed.
    HttpLog,
}

impl Origin {
    /// The column's value.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Filter => "filter",
            Origin::HttpLog => "http_log",
        }
    }
}

/// Consumer groups, stored as one comma-separated text column.
#[derive(Clone, Copy, Debug)]
pub enum GroupList<'a> {
    /// Resolved lazily from a producer's dictionary.
    Dictionary(Groups<'a>),
    /// Already joined.
    Joined(&'a str),
}

impl GroupList<'_> {
    /// The column's value; `None` without groups.
    pub fn joined(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            GroupList::Dictionary(g) if g.is_empty() => None,
            GroupList::Dictionary(g) => Some(g.iter().collect::<Vec<_>>().join(",").into()),
            GroupList::Joined("") => None,
            GroupList::Joined(s) => Some((*s).into()),
        }
    }
}

/// One request row, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct RowView<'a> {
    /// The record itself, as the codec resolves it.
    pub row: kong_looker_proto::Row<'a>,
    /// Groups, whichever way they are held (the codec's field is ignored).
    pub groups: GroupList<'a>,
    /// Filter or http-log.
    pub origin: Origin,
    /// The producing filter instance (canonical UUID), for filter rows.
    pub instance_id: Option<&'a str>,
    /// The batch's sequence number, for filter rows.
    pub batch_sequence: Option<u64>,
}

impl<'a> RowView<'a> {
    /// A filter record from batch `(instance_id, sequence)`.
    pub fn filter(row: kong_looker_proto::Row<'a>, instance_id: &'a str, sequence: u64) -> Self {
        RowView {
            groups: GroupList::Dictionary(row.consumer_groups),
            row,
            origin: Origin::Filter,
            instance_id: Some(instance_id),
            batch_sequence: Some(sequence),
        }
    }
}

/// Writes an id the way the table stores it: 32 lowercase hex digits for
/// binary ids, the text otherwise.
pub fn id_text(id: Option<IdRef<'_>>) -> Option<String> {
    id.map(|i| i.to_string())
}
