//! Kong's stock http-log plugin: its JSON entries mapped onto the requests
//! table, so requests that never reach a filter (rejected by a Lua plugin,
//! or on a Kong without Wasm) land beside the filter's rows.
//!
//! Identity comes from `consumer` and `authenticated_entity`, which Kong's
//! own auth plugins set, so it is recorded as verified. Headers are read for
//! the host, the agent and the trace id only; nothing else from them (never
//! `authorization` or cookies) is kept. Paths go through the filter's own
//! templater, and addresses through its privacy transform.

use std::sync::Mutex;

use kong_looker_core::capture::agent::AgentClassifier;
use kong_looker_core::capture::ai::{self, AiUsage};
use kong_looker_core::capture::path::PathTemplater;
use kong_looker_core::capture::privacy::{self, AddressMode, Pseudonymiser};
use kong_looker_proto::coding::IdRef;
use kong_looker_proto::limits::{MAX_ID_BYTES, MAX_STRING_BYTES, MAX_TIME_MS};
use kong_looker_proto::row::{Groups, agent_category_name};
use serde::Deserialize;
use serde_json::Value;

use crate::row::{GroupList, Origin, RowView};

/// Most entries one request may carry (Kong's http-log queue sends up to
/// `max_batch_size`, 1 by default).
pub const MAX_ENTRIES: usize = 10_000;
/// Distinct path templates kept before new ones become `{other}`.
const MAX_TEMPLATES: usize = 20_000;

/// Why an http-log body was refused; names the entry and the field.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Not JSON, or not an object or array of objects.
    #[error("body is not Kong http-log JSON: {0}")]
    Json(String),
    /// Too many entries in one body.
    #[error("{count} entries in one body, at most {MAX_ENTRIES}")]
    TooMany {
        /// Entries sent.
        count: usize,
    },
    /// One entry is unusable.
    #[error("entry {index}: {field}: {reason}")]
    Entry {
        /// Position in the array, from 0.
        index: usize,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl LogError {
    /// Short code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            LogError::Json(_) => "malformed",
            LogError::TooMany { .. } => "too_many_entries",
            LogError::Entry { .. } => "invalid_entry",
        }
    }
}

/// One http-log entry, as far as we read it. Unknown fields are ignored:
/// Kong adds fields between versions and `custom_fields_by_lua` adds more.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entry {
    started_at: Option<f64>,
    request: Request,
    response: Response,
    route: Option<Named>,
    service: Option<Named>,
    workspace_name: Option<String>,
    /// Set with `custom_fields_by_lua` to match the filter's `workspace`.
    kong_looker_team: Option<String>,
    consumer: Option<Consumer>,
    authenticated_entity: Option<Named>,
    latencies: Latencies,
    upstream_status: Option<Value>,
    source: Option<String>,
    client_ip: Option<String>,
    /// Kong's AI Gateway section, read by the capture core's rule.
    ai: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    id: Option<String>,
    method: Option<String>,
    uri: Option<String>,
    size: Option<f64>,
    headers: serde_json::Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Response {
    status: Option<f64>,
    size: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Consumer {
    id: Option<String>,
    username: Option<String>,
    custom_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Latencies {
    request: Option<f64>,
    proxy: Option<f64>,
}

/// One http-log entry, mapped and owned.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    started_at_ms: i64,
    workspace: Option<String>,
    route_id: Option<String>,
    route_name: Option<String>,
    service_id: Option<String>,
    service_name: Option<String>,
    method: Option<String>,
    host: Option<String>,
    path: Option<String>,
    status: Option<u16>,
    response_source: Option<&'static str>,
    latency_total_us: u64,
    latency_upstream_us: Option<u64>,
    request_bytes: u64,
    response_bytes: u64,
    anonymous: bool,
    consumer_id: Option<String>,
    consumer_username: Option<String>,
    consumer_custom_id: Option<String>,
    credential: Option<String>,
    client_address: Option<String>,
    agent_category: Option<&'static str>,
    agent_name: Option<String>,
    /// Kong's request id: the key shared with the filter's records.
    pub request_id: Option<String>,
    trace_id: Option<String>,
    /// The `ai` section's figures, when the entry had one.
    ai: Option<AiUsage>,
}

impl LogRow {
    /// The row as the stores write it.
    pub fn view(&self) -> RowView<'_> {
        let has_consumer = self.consumer_id.is_some() || self.consumer_username.is_some();
        fn s(v: &Option<String>) -> Option<&str> {
            v.as_deref()
        }
        let ai = self.ai.as_ref().map(AiUsage::as_record);
        let mut row = kong_looker_proto::Row {
            started_at_ms: self.started_at_ms,
            route_id: s(&self.route_id),
            route_name: s(&self.route_name),
            service_id: s(&self.service_id),
            service_name: s(&self.service_name),
            workspace: s(&self.workspace),
            method: s(&self.method),
            host: s(&self.host),
            path: s(&self.path),
            status: self.status,
            response_source: self.response_source,
            latency_total_us: self.latency_total_us,
            latency_upstream_us: self.latency_upstream_us,
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            auth_method: has_consumer.then_some("kong_consumer"),
            trust: has_consumer.then_some("verified"),
            anonymous: self.anonymous,
            consumer_id: s(&self.consumer_id),
            consumer_username: s(&self.consumer_username),
            consumer_custom_id: s(&self.consumer_custom_id),
            credential: s(&self.credential),
            consumer_groups: Groups::EMPTY,
            subject: None,
            issuer: None,
            client_id: None,
            client_address: s(&self.client_address),
            agent_category: self.agent_category,
            agent_name: s(&self.agent_name),
            request_id: self.request_id.as_deref().map(IdRef::Text),
            trace_id: self.trace_id.as_deref().map(IdRef::Text),
            sample_weight: 1.0,
            ai_provider: None,
            ai_request_model: None,
            ai_response_model: None,
            ai_request_mode: None,
            ai_prompt_tokens: None,
            ai_completion_tokens: None,
            ai_total_tokens: None,
            ai_cost_micros: None,
            ai_llm_latency_ms: None,
            ai_time_to_first_token_ms: None,
            ai_cache_status: None,
            ai_cache_fetch_latency_ms: None,
            ai_embeddings_model: None,
            ai_guardrail_blocks: None,
            ai_guardrail: None,
            ai_mcp_tool_calls: None,
            ai_mcp_tool: None,
            ai_calls: None,
            ai_unreadable: None,
        };
        if let Some(ai) = &ai {
            row.set_ai(ai);
        }
        RowView {
            row,
            groups: GroupList::Joined(""),
            origin: Origin::HttpLog,
            instance_id: None,
            batch_sequence: None,
        }
    }
}

/// Maps http-log bodies; holds the bounded path and agent caches.
pub struct Mapper {
    paths: Mutex<(PathTemplater, AgentClassifier)>,
    address_mode: AddressMode,
    hasher: Option<Pseudonymiser>,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper")
            .field("address_mode", &self.address_mode)
            .finish_non_exhaustive()
    }
}

impl Mapper {
    /// A mapper recording client addresses as `mode` (with `hash_key` for
    /// [`AddressMode::Hash`]; without a key, hashing leaves the address out).
    pub fn new(address_mode: AddressMode, hash_key: Option<&[u8]>) -> Self {
        // Clients choose the paths and agents: seed their maps at random.
        let seed = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            0x6b6c_u64,
        );
        Mapper {
            paths: Mutex::new((
                PathTemplater::new(Vec::new(), MAX_TEMPLATES, seed),
                AgentClassifier::new(seed.rotate_left(32)),
            )),
            address_mode,
            hasher: hash_key.and_then(Pseudonymiser::new),
        }
    }

    /// Parses a body: one entry, or an array of entries.
    pub fn map(&self, body: &[u8]) -> Result<Vec<LogRow>, LogError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| LogError::Json(e.to_string()))?;
        let entries = match value {
            Value::Array(items) => items,
            object @ Value::Object(_) => vec![object],
            _ => return Err(LogError::Json("expected an object or an array".into())),
        };
        if entries.len() > MAX_ENTRIES {
            return Err(LogError::TooMany {
                count: entries.len(),
            });
        }
        entries
            .into_iter()
            .enumerate()
            .map(|(index, v)| self.entry(index, v))
            .collect()
    }

    fn entry(&self, index: usize, value: Value) -> Result<LogRow, LogError> {
        let bad = |field: &'static str, reason: String| LogError::Entry {
            index,
            field,
            reason,
        };
        if !value.is_object() {
            return Err(bad("entry", "expected an object".into()));
        }
        let e: Entry =
            serde_json::from_value(value).map_err(|err| bad("entry", err.to_string()))?;
        let started_at_ms = match e.started_at {
            Some(ms) if ms.is_finite() && (0.0..=MAX_TIME_MS as f64).contains(&ms) => ms as i64,
            Some(ms) => return Err(bad("started_at", format!("{ms} is not a Unix time in ms"))),
            None => return Err(bad("started_at", "missing".into())),
        };
        let status = match e.response.status {
            Some(s) if (100.0..=999.0).contains(&s) => Some(s as u16),
            Some(s) => return Err(bad("response.status", format!("{s} is not an HTTP status"))),
            None => return Err(bad("response.status", "missing".into())),
        };
        let header = |name: &str| -> Option<&str> {
            match e.request.headers.get(name)? {
                Value::String(s) => Some(s.as_str()),
                // Repeated headers arrive as an array; the first one counts.
                Value::Array(items) => items.first()?.as_str(),
                _ => None,
            }
        };
        let upstream_status = match &e.upstream_status {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Number(_)) => true,
            _ => false,
        };
        let response_source = match e.source.as_deref() {
            Some("upstream" | "service") => Some("upstream"),
            Some("kong" | "exit" | "error") => Some("kong"),
            _ if upstream_status => Some("upstream"),
            _ => Some("kong"),
        };
        let ms_to_us = |ms: f64| (ms.max(0.0) * 1000.0).min(86_400_000_000.0) as u64;
        let latency_total_us = e.latencies.request.map(ms_to_us).unwrap_or(0);
        // Kong reports -1 or omits the proxy latency when no upstream answered.
        let latency_upstream_us = e
            .latencies
            .proxy
            .filter(|&p| p >= 0.0 && response_source == Some("upstream"))
            .map(ms_to_us);
        let size = |v: Option<f64>| v.map(|b| b.clamp(0.0, 2f64.powi(48)) as u64).unwrap_or(0);
        let (path, agent) = {
            let mut guard = self.paths.lock().unwrap_or_else(|p| p.into_inner());
            let (templater, agents) = &mut *guard;
            let path = e
                .request
                .uri
                .as_deref()
                .map(|u| templater.template(u).to_owned());
            let agent = header("user-agent").and_then(|ua| agents.classify(ua));
            (path, agent)
        };
        let consumer = e.consumer.unwrap_or_default();
        let client_address = e
            .client_ip
            .as_deref()
            .and_then(|ip| privacy::client_address(ip, &self.address_mode, self.hasher.as_ref()));
        Ok(LogRow {
            started_at_ms,
            workspace: text(e.kong_looker_team.or(e.workspace_name)),
            route_id: text(e.route.as_ref().and_then(|r| r.id.clone())),
            route_name: text(e.route.and_then(|r| r.name)),
            service_id: text(e.service.as_ref().and_then(|s| s.id.clone())),
            service_name: text(e.service.and_then(|s| s.name)),
            method: text(e.request.method.clone()),
            host: text(header("host").map(str::to_owned)),
            path,
            status,
            response_source,
            latency_total_us,
            latency_upstream_us,
            request_bytes: size(e.request.size),
            response_bytes: size(e.response.size),
            anonymous: header("x-anonymous-consumer") == Some("true")
                && (consumer.id.is_some() || consumer.username.is_some()),
            consumer_id: text(consumer.id),
            consumer_username: text(consumer.username),
            consumer_custom_id: text(consumer.custom_id),
            credential: text(e.authenticated_entity.and_then(|a| a.id)),
            client_address,
            agent_category: agent.map(|a| agent_category_name(a.category)),
            agent_name: agent.map(|a| a.name.clone()),
            request_id: id(e.request.id.as_deref()),
            // The filter's own parser, so both paths agree on what counts.
            trace_id: header("traceparent")
                .and_then(kong_looker_core::capture::timing::trace_id)
                .map(str::to_ascii_lowercase),
            ai: e
                .ai
                .filter(|v| !v.is_null())
                .map(|v| ai::read(&v))
                .filter(|u| !u.is_empty() || u.unreadable > 0),
        })
    }
}

/// A string column's value: empty becomes absent, long ones are cut at a
/// character boundary, as the filter's builder does.
fn text(v: Option<String>) -> Option<String> {
    let s = v?;
    if s.is_empty() {
        return None;
    }
    Some(kong_looker_core::capture::cut(&s, MAX_STRING_BYTES).to_owned())
}

/// An id column's value: lowercase, at most the codec's id length.
fn id(v: Option<&str>) -> Option<String> {
    let s = v?.trim();
    (!s.is_empty() && s.len() <= MAX_ID_BYTES).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../tests/data/kong_sample.json");

    #[test]
    fn kong_sample_maps_field_for_field() {
        let rows = Mapper::new(AddressMode::Keep, None)
            .map(SAMPLE.as_bytes())
            .unwrap();
        let v = rows[0].view();
        let r = v.row;
        assert_eq!(r.started_at_ms, 1_726_783_839_538);
        assert_eq!(r.route_name, Some("example_route"));
        assert_eq!(r.route_id, Some("0f1a4101-3327-4274-b1e4-484a4ab0c030"));
        assert_eq!(r.service_name, Some("example_service"));
        assert_eq!(r.workspace, Some("default"));
        assert_eq!(r.method, Some("GET"));
        assert_eq!(r.host, Some("localhost:8000"));
        assert_eq!(r.path, Some("/example-route"));
        assert_eq!(r.status, Some(200));
        assert_eq!(r.response_source, Some("upstream"));
        assert_eq!(r.latency_total_us, 173_000);
        assert_eq!(r.latency_upstream_us, Some(171_000));
        assert_eq!((r.request_bytes, r.response_bytes), (139, 9982));
        assert_eq!(r.client_address, Some("192.168.65.1"));
        assert_eq!(
            rows[0].request_id.as_deref(),
            Some("2f6946328ffc4946b8c9120704a4a155")
        );
        assert_eq!(r.auth_method, None);
        assert_eq!(v.origin, Origin::HttpLog);
    }

    #[test]
    fn arrays_consumers_and_rejections() {
        let body = r#"[{"started_at": 1726783839538, "response": {"status": 401},
            "request": {"uri": "/orders/12345?apikey=secret", "method": "POST",
                        "headers": {"authorization": "Bearer abc", "user-agent": ["GPTBot/1.2", "x"],
                            "traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}},
            "latencies": {"request": 2, "proxy": -1}},
           {"started_at": 1726783839538, "response": {"status": 200},
            "consumer": {"id": "c1", "username": "alice"}, "authenticated_entity": {"id": "cred-9"},
            "request": {"headers": {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
            "upstream_status": "200", "latencies": {"request": 5, "proxy": 3}}]"#;
        let rows = Mapper::new(AddressMode::Keep, None)
            .map(body.as_bytes())
            .unwrap();
        let a = rows[0].view().row;
        assert_eq!(a.path, Some("/orders/{id}"));
        assert_eq!(a.response_source, Some("kong"));
        assert_eq!(a.latency_upstream_us, None);
        assert_eq!(a.agent_name, Some("GPTBot"));
        assert_eq!(
            rows[0]
                .view()
                .row
                .trace_id
                .map(|t| t.to_string())
                .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // An all-zero trace id is no trace id, as in the filter.
        assert_eq!(rows[1].view().row.trace_id, None);
        let b = rows[1].view().row;
        assert_eq!(
            (b.consumer_username, b.credential),
            (Some("alice"), Some("cred-9"))
        );
        assert_eq!(
            (b.auth_method, b.trust),
            (Some("kong_consumer"), Some("verified"))
        );
        assert_eq!(b.latency_upstream_us, Some(3000));
    }

    #[test]
    fn bad_entries_are_named() {
        let m = Mapper::new(AddressMode::Keep, None);
        let err = |b: &str| m.map(b.as_bytes()).unwrap_err().to_string();
        assert!(err("nope").contains("not Kong http-log JSON"));
        assert!(err("7").contains("expected an object or an array"));
        assert!(err(r#"[{"response":{"status":200}}]"#).contains("entry 0: started_at: missing"));
        assert!(
            err(r#"[{"started_at":1,"response":{"status":200}},{"started_at":1,"response":{"status":7}}]"#)
                .contains("entry 1: response.status")
        );
        assert!(err(r#"[{"started_at":1,"response":{"status":200}}, 3]"#).contains("entry 1"));
        assert!(err(r#"{"started_at":"x","response":{"status":200}}"#).contains("entry 0: entry"));
    }
}
