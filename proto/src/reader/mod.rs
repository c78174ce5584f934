//! [`BatchReader`]: the collector side of the codec.
//!
//! Reading a batch takes three steps, so that the collector can do its own
//! work in between:
//! 1. [`BatchReader::decode`] parses the protobuf and validates everything
//!    that needs no dictionary: revision, producer, column lengths, times,
//!    durations, sizes, ids and the shape of every definition. The batch's
//!    key ([`DecodedBatch::key`]) is then known, for deduplication.
//! 2. [`Dictionary::apply`] adds the batch's definitions to the producer's
//!    dictionary, checking that they continue it without gaps or conflicts.
//! 3. [`DecodedBatch::rows`] checks every record reference and yields flat
//!    [`Row`]s.
//!
//! Each failure is a [`DecodeError`] naming the field at fault; nothing here
//! panics or allocates in proportion to a length the batch merely claims.

mod ai;
mod dictionary;

pub use dictionary::{Dictionary, DictionaryMark};

use prost::Message;

use crate::coding::{IdRef, MAX_SIZE_BYTES, decode_duration, decode_upstream, format_uuid};
use crate::error::DecodeError;
use crate::limits::{
    Limits, MAX_ABANDONED, MAX_GROUPS, MAX_ID_BYTES, MAX_NODE_ID_BYTES, MAX_RECORD_SPREAD_MS,
    MAX_RECORDS, MAX_SAMPLE_WEIGHT, MAX_STRING_BYTES, MAX_TIME_MS, MAX_VERSION_BYTES,
};
use crate::row::{
    Groups, Row, agent_category_name, auth_method_name, method_name, source_name, trust_name,
};
use crate::v1::{self, AgentCategory, AuthMethod, Method, ResponseSource, Trust};
use crate::{SCHEMA_REVISION, TableKind, TableLens};

/// Decodes and validates batches under a set of [`Limits`].
#[derive(Clone, Debug, Default)]
pub struct BatchReader {
    limits: Limits,
}

/// A decoded, structurally valid batch.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedBatch {
    /// The producer's instance id.
    pub instance_id: [u8; 16],
    /// Kong node id; empty when unknown.
    pub node_id: String,
    /// Filter version.
    pub filter_version: String,
    /// Kong version.
    pub kong_version: String,
    /// The batch's sequence number.
    pub sequence: u64,
    /// When the producer cut the batch, Unix ms; 0 when not given.
    pub cut_time_ms: i64,
    /// Drops the producer reports since its previous batch, with the
    /// sequence numbers of the batches it abandoned (at most
    /// [`MAX_ABANDONED`]).
    pub drops: v1::Drops,
    /// The dictionary generation the records refer to.
    pub generation: u32,
    definitions: v1::Dictionary,
    records: Columns,
}

/// Records after validation, with times and durations decoded.
#[derive(Clone, Debug, Default, PartialEq)]
struct Columns {
    started_at_ms: Vec<i64>,
    latency_total_us: Vec<u64>,
    latency_upstream_us: Vec<Option<u64>>,
    endpoint: Vec<u32>,
    outcome: Vec<u32>,
    request_bytes: Vec<u64>,
    response_bytes: Vec<u64>,
    identity: Vec<u32>,
    /// String ids; 0 for an inline address as well as for none.
    client: Vec<u32>,
    /// Inline addresses: (record index, range of `client_text`).
    client_inline: Vec<(u32, core::ops::Range<usize>)>,
    client_text: String,
    agent: Vec<u32>,
    request_id: Vec<v1::Id>,
    trace_id: Vec<v1::Id>,
    sample_weight: Vec<f32>,
    /// AI figures of the records that have them, by record index.
    ai: ai::AiRows,
    /// The highest id the records use, per table.
    max_ref: TableLens,
}

impl BatchReader {
    /// A reader with these limits.
    pub fn new(limits: Limits) -> Self {
        BatchReader { limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses and validates a batch; see the module docs.
    pub fn decode(&self, bytes: &[u8]) -> Result<DecodedBatch, DecodeError> {
        if bytes.len() > self.limits.max_batch_bytes {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: self.limits.max_batch_bytes,
            });
        }
        let batch = v1::Batch::decode(bytes)?;
        match batch.schema_revision {
            0 => return Err(DecodeError::Missing("schema_revision")),
            r if r > SCHEMA_REVISION => {
                return Err(DecodeError::UnsupportedRevision {
                    got: r,
                    supported: SCHEMA_REVISION,
                });
            }
            _ => {}
        }
        let producer = batch.producer.ok_or(DecodeError::Missing("producer"))?;
        let instance_id: [u8; 16] = producer.instance_id.as_slice().try_into().map_err(|_| {
            DecodeError::invalid(
                "producer.instance_id",
                format!("{} bytes, expected 16", producer.instance_id.len()),
            )
        })?;
        check_len("producer.node_id", &producer.node_id, MAX_NODE_ID_BYTES)?;
        check_len(
            "producer.filter_version",
            &producer.filter_version,
            MAX_VERSION_BYTES,
        )?;
        check_len(
            "producer.kong_version",
            &producer.kong_version,
            MAX_VERSION_BYTES,
        )?;
        if batch.sequence == 0 {
            return Err(DecodeError::invalid("sequence", "must be at least 1"));
        }
        if batch.cut_time_ms != 0 {
            self.check_time("cut_time_ms", batch.cut_time_ms)?;
        }
        let drops = batch.drops.unwrap_or_default();
        if drops.abandoned.len() > MAX_ABANDONED {
            return Err(DecodeError::TooManyAbandoned {
                count: drops.abandoned.len(),
                max: MAX_ABANDONED,
            });
        }
        let definitions = batch.dictionary.ok_or(DecodeError::Missing("dictionary"))?;
        self.check_definitions(&definitions)?;
        let records = match batch.records {
            Some(records) => self.check_records(records, batch.schema_revision)?,
            None => Columns::default(),
        };
        Ok(DecodedBatch {
            instance_id,
            node_id: producer.node_id,
            filter_version: producer.filter_version,
            kong_version: producer.kong_version,
            sequence: batch.sequence,
            cut_time_ms: batch.cut_time_ms,
            drops,
            generation: definitions.generation,
            definitions,
            records,
        })
    }

    /// Decodes a batch that defines its whole dictionary, such as a
    /// producer's first batch, and resolves it on its own.
    pub fn decode_standalone(
        &self,
        bytes: &[u8],
    ) -> Result<(DecodedBatch, Dictionary), DecodeError> {
        let batch = self.decode(bytes)?;
        let mut dictionary = Dictionary::new(batch.generation);
        dictionary.apply(&batch, &self.limits)?;
        batch.check_references(&dictionary)?;
        Ok((batch, dictionary))
    }

    fn check_time(&self, field: &str, ms: i64) -> Result<(), DecodeError> {
        let fresh = match self.limits.now_ms {
            Some(now) => {
                now.saturating_sub(self.limits.max_age_ms) <= ms
                    && ms <= now.saturating_add(self.limits.max_future_ms)
            }
            None => true,
        };
        if (0..=MAX_TIME_MS).contains(&ms) && fresh {
            Ok(())
        } else {
            Err(DecodeError::TimeOutOfRange {
                field: field.to_owned(),
                value_ms: ms,
            })
        }
    }

    fn check_definitions(&self, d: &v1::Dictionary) -> Result<(), DecodeError> {
        let count = d
            .strings
            .len()
            .saturating_add(d.endpoints.len())
            .saturating_add(d.identities.len())
            .saturating_add(d.agents.len())
            .saturating_add(d.outcomes.len());
        if count > self.limits.max_definitions {
            return Err(DecodeError::TooManyDefinitions {
                count,
                max: self.limits.max_definitions,
            });
        }
        for kind in TableKind::ALL {
            let (from, len) = defined_range(d, kind);
            if len > 0 && from == 0 {
                return Err(DecodeError::invalid(
                    format!("dictionary.{}_from", kind.name()),
                    "must be at least 1 when entries are defined",
                ));
            }
            if u64::from(from).saturating_add(len as u64) > u64::from(u32::MAX) {
                return Err(DecodeError::invalid(
                    format!("dictionary.{}_from", kind.name()),
                    "ids run past 2^32 - 1",
                ));
            }
        }
        for (i, s) in d.strings.iter().enumerate() {
            match &s.value {
                None => {
                    return Err(DecodeError::invalid(
                        format!("dictionary.strings[{i}]"),
                        "no value",
                    ));
                }
                Some(v1::symbol::Value::Text(t)) => {
                    if t.is_empty() {
                        return Err(DecodeError::invalid(
                            format!("dictionary.strings[{i}]"),
                            "empty text",
                        ));
                    }
                    if t.len() > MAX_STRING_BYTES {
                        return Err(DecodeError::TooLong {
                            field: format!("dictionary.strings[{i}]"),
                            len: t.len(),
                            max: MAX_STRING_BYTES,
                        });
                    }
                }
                Some(v1::symbol::Value::Uuid(u)) => {
                    if u.len() != 16 {
                        return Err(DecodeError::invalid(
                            format!("dictionary.strings[{i}].uuid"),
                            format!("{} bytes, expected 16", u.len()),
                        ));
                    }
                }
            }
        }
        for (i, e) in d.endpoints.iter().enumerate() {
            if Method::try_from(e.method).is_err() {
                return Err(unknown_enum(
                    format!("dictionary.endpoints[{i}].method"),
                    e.method,
                ));
            }
        }
        for (i, e) in d.identities.iter().enumerate() {
            if AuthMethod::try_from(e.auth_method).is_err() {
                return Err(unknown_enum(
                    format!("dictionary.identities[{i}].auth_method"),
                    e.auth_method,
                ));
            }
            if Trust::try_from(e.trust).is_err() {
                return Err(unknown_enum(
                    format!("dictionary.identities[{i}].trust"),
                    e.trust,
                ));
            }
            if e.consumer_groups.len() > MAX_GROUPS {
                return Err(DecodeError::invalid(
                    format!("dictionary.identities[{i}].consumer_groups"),
                    format!(
                        "{} groups, over the limit of {MAX_GROUPS}",
                        e.consumer_groups.len()
                    ),
                ));
            }
        }
        for (i, e) in d.agents.iter().enumerate() {
            if AgentCategory::try_from(e.category).is_err() {
                return Err(unknown_enum(
                    format!("dictionary.agents[{i}].category"),
                    e.category,
                ));
            }
        }
        for (i, e) in d.outcomes.iter().enumerate() {
            if ResponseSource::try_from(e.source).is_err() {
                return Err(unknown_enum(
                    format!("dictionary.outcomes[{i}].source"),
                    e.source,
                ));
            }
            if e.status != 0 && !(100..=999).contains(&e.status) {
                return Err(DecodeError::invalid(
                    format!("dictionary.outcomes[{i}].status"),
                    format!("{} is not an HTTP status", e.status),
                ));
            }
        }
        Ok(())
    }

    fn check_records(&self, r: v1::Records, revision: u32) -> Result<Columns, DecodeError> {
        let count = r.count;
        if r.ai.is_some() && revision < 2 {
            return Err(DecodeError::invalid(
                "records.ai",
                format!("needs schema_revision 2, the batch says {revision}"),
            ));
        }
        if !r.client_inline.is_empty() && revision < 3 {
            return Err(DecodeError::invalid(
                "records.client_inline",
                format!("needs schema_revision 3, the batch says {revision}"),
            ));
        }
        if count > MAX_RECORDS {
            return Err(DecodeError::TooManyRecords {
                count,
                max: MAX_RECORDS,
            });
        }
        let n = count as usize;
        let required: [(&'static str, usize); 10] = [
            ("end_delta_ms", r.end_delta_ms.len()),
            ("endpoint", r.endpoint.len()),
            ("outcome", r.outcome.len()),
            ("latency_total", r.latency_total.len()),
            ("latency_upstream", r.latency_upstream.len()),
            ("request_bytes", r.request_bytes.len()),
            ("response_bytes", r.response_bytes.len()),
            ("identity", r.identity.len()),
            ("client", r.client.len()),
            ("agent", r.agent.len()),
        ];
        for (column, len) in required {
            if len != n {
                return Err(DecodeError::ColumnLength { column, len, count });
            }
        }
        let optional: [(&'static str, usize); 3] = [
            ("request_id", r.request_id.len()),
            ("trace_id", r.trace_id.len()),
            ("sample_weight", r.sample_weight.len()),
        ];
        for (column, len) in optional {
            if len != 0 && len != n {
                return Err(DecodeError::ColumnLength { column, len, count });
            }
        }
        if n == 0 {
            if !r.client_inline.is_empty() {
                return Err(DecodeError::invalid(
                    "records.client_inline",
                    "addresses in a batch without records",
                ));
            }
            return Ok(Columns::default());
        }
        self.check_time("records.base_time_ms", r.base_time_ms)?;
        let (client, client_inline, client_text) = clients(r.client, &r.client_inline)?;

        let mut started_at_ms = Vec::with_capacity(n);
        let mut latency_total_us = Vec::with_capacity(n);
        let mut latency_upstream_us = Vec::with_capacity(n);
        let mut end = r.base_time_ms;
        let columns = r
            .end_delta_ms
            .iter()
            .zip(&r.latency_total)
            .zip(&r.latency_upstream);
        for (i, ((&delta, &total), &upstream)) in columns.enumerate() {
            end = end
                .checked_add(delta)
                .filter(|e| e.abs_diff(r.base_time_ms) <= MAX_RECORD_SPREAD_MS as u64)
                .ok_or_else(|| DecodeError::TimeOutOfRange {
                    field: format!("records.end_delta_ms[{i}]"),
                    value_ms: end.saturating_add(delta),
                })?;
            let total = decode_duration(total).ok_or_else(|| {
                DecodeError::invalid(format!("records.latency_total[{i}]"), "longer than a day")
            })?;
            let upstream = decode_upstream(total, upstream).map_err(|_| {
                DecodeError::invalid(
                    format!("records.latency_upstream[{i}]"),
                    "outside 0 to one day",
                )
            })?;
            // `total` is at most a day, so this neither overflows nor leaves
            // the window by more than a day.
            let start = end.saturating_sub((total / 1000) as i64);
            if start < 0 {
                return Err(DecodeError::TimeOutOfRange {
                    field: format!("records.start[{i}]"),
                    value_ms: start,
                });
            }
            started_at_ms.push(start);
            latency_total_us.push(total);
            latency_upstream_us.push(upstream);
        }
        for (column, values) in [
            ("request_bytes", &r.request_bytes),
            ("response_bytes", &r.response_bytes),
        ] {
            if let Some(i) = values.iter().position(|&v| v > MAX_SIZE_BYTES) {
                return Err(DecodeError::invalid(
                    format!("records.{column}[{i}]"),
                    "over 2^48 bytes",
                ));
            }
        }
        if let Some(i) = r
            .sample_weight
            .iter()
            .position(|w| !(w.is_finite() && (1.0..=MAX_SAMPLE_WEIGHT).contains(w)))
        {
            return Err(DecodeError::invalid(
                format!("records.sample_weight[{i}]"),
                "must be a number from 1 to 1e6",
            ));
        }
        for (column, ids) in [("request_id", &r.request_id), ("trace_id", &r.trace_id)] {
            for (i, id) in ids.iter().enumerate() {
                check_id(column, i, id)?;
            }
        }
        let ai = match r.ai {
            Some(columns) => ai::check(columns, count)?,
            None => Vec::new(),
        };
        let max = |v: &[u32]| v.iter().copied().max().unwrap_or(0);
        let ai_strings = ai.iter().flat_map(|(_, f)| f.strings()).max().unwrap_or(0);
        let max_ref = [
            max(&client).max(ai_strings),
            max(&r.endpoint),
            max(&r.identity),
            max(&r.agent),
            max(&r.outcome),
        ];
        Ok(Columns {
            started_at_ms,
            latency_total_us,
            latency_upstream_us,
            endpoint: r.endpoint,
            outcome: r.outcome,
            request_bytes: r.request_bytes,
            response_bytes: r.response_bytes,
            identity: r.identity,
            client,
            client_inline,
            client_text,
            agent: r.agent,
            request_id: r.request_id,
            trace_id: r.trace_id,
            sample_weight: r.sample_weight,
            ai,
            max_ref,
        })
    }
}

/// Inline client addresses and the column's ids, as `Records.client`'s
/// comment describes: unchanged without `client_inline`, shifted by two
/// with it, where 1 and 2 take the next 4 or 16 bytes.
#[allow(clippy::type_complexity)]
fn clients(
    column: Vec<u32>,
    inline: &[u8],
) -> Result<(Vec<u32>, Vec<(u32, core::ops::Range<usize>)>, String), DecodeError> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    if inline.is_empty() {
        return Ok((column, Vec::new(), String::new()));
    }
    let mut ids = Vec::with_capacity(column.len());
    let mut spans = Vec::new();
    let mut text = String::new();
    let mut shown = crate::address::AddressText::default();
    let mut rest = inline;
    let short = |i: usize| {
        DecodeError::invalid(
            "records.client_inline",
            format!("ends inside the address of record {i}"),
        )
    };
    for (i, value) in column.into_iter().enumerate() {
        let ip = match value {
            0 => {
                ids.push(0);
                continue;
            }
            1 => {
                let (bytes, tail) = rest.split_first_chunk::<4>().ok_or_else(|| short(i))?;
                rest = tail;
                std::net::IpAddr::V4(Ipv4Addr::from(*bytes))
            }
            2 => {
                let (bytes, tail) = rest.split_first_chunk::<16>().ok_or_else(|| short(i))?;
                rest = tail;
                std::net::IpAddr::V6(Ipv6Addr::from(*bytes))
            }
            id => {
                ids.push(id.saturating_sub(2));
                continue;
            }
        };
        let start = text.len();
        text.push_str(shown.show(ip));
        spans.push((u32::try_from(i).unwrap_or(u32::MAX), start..text.len()));
        ids.push(0);
    }
    if !rest.is_empty() {
        return Err(DecodeError::invalid(
            "records.client_inline",
            format!("{} bytes left after the last address", rest.len()),
        ));
    }
    Ok((ids, spans, text))
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), DecodeError> {
    if value.len() > max {
        return Err(DecodeError::TooLong {
            field: field.to_owned(),
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn check_id(column: &str, i: usize, id: &v1::Id) -> Result<(), DecodeError> {
    match &id.value {
        None => Ok(()),
        Some(v1::id::Value::Binary(b)) if b.len() == 16 => Ok(()),
        Some(v1::id::Value::Binary(b)) => Err(DecodeError::invalid(
            format!("records.{column}[{i}].binary"),
            format!("{} bytes, expected 16", b.len()),
        )),
        Some(v1::id::Value::Text(t)) if t.is_empty() => Err(DecodeError::invalid(
            format!("records.{column}[{i}].text"),
            "empty",
        )),
        Some(v1::id::Value::Text(t)) => {
            check_len(&format!("records.{column}[{i}].text"), t, MAX_ID_BYTES)
        }
    }
}

fn unknown_enum(field: String, value: i32) -> DecodeError {
    DecodeError::invalid(
        field,
        format!("unknown value {value}; upgrade the collector"),
    )
}

/// First id and count of the entries `d` defines in table `kind`.
fn defined_range(d: &v1::Dictionary, kind: TableKind) -> (u32, usize) {
    match kind {
        TableKind::Strings => (d.strings_from, d.strings.len()),
        TableKind::Endpoints => (d.endpoints_from, d.endpoints.len()),
        TableKind::Identities => (d.identities_from, d.identities.len()),
        TableKind::Agents => (d.agents_from, d.agents.len()),
        TableKind::Outcomes => (d.outcomes_from, d.outcomes.len()),
    }
}

impl DecodedBatch {
    /// The idempotency key: (instance id, sequence).
    pub fn key(&self) -> ([u8; 16], u64) {
        (self.instance_id, self.sequence)
    }

    /// The instance id as a canonical UUID string.
    pub fn instance_id_string(&self) -> String {
        format_uuid(self.instance_id)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.started_at_ms.len()
    }

    /// True when the batch carries only drops.
    pub fn is_empty(&self) -> bool {
        self.records.started_at_ms.is_empty()
    }

    /// The definitions this batch carries, e.g. to persist the ones that
    /// [`Dictionary::apply`] added.
    pub fn definitions(&self) -> &v1::Dictionary {
        &self.definitions
    }

    /// Checks that every record refers to a defined entry.
    pub fn check_references(&self, dict: &Dictionary) -> Result<(), DecodeError> {
        if self.generation != dict.generation {
            return Err(DecodeError::GenerationMismatch {
                batch: self.generation,
                reader: dict.generation,
            });
        }
        let columns: [(&str, TableKind, &[u32]); 5] = [
            ("client or ai", TableKind::Strings, &self.records.client),
            ("endpoint", TableKind::Endpoints, &self.records.endpoint),
            ("identity", TableKind::Identities, &self.records.identity),
            ("agent", TableKind::Agents, &self.records.agent),
            ("outcome", TableKind::Outcomes, &self.records.outcome),
        ];
        let lens = dict.lens();
        for ((column, table, values), (max, len)) in columns
            .into_iter()
            .zip(self.records.max_ref.iter().zip(lens))
        {
            if *max > len {
                let i = values.iter().position(|v| v > &len).unwrap_or(0);
                return Err(DecodeError::DanglingReference {
                    field: format!("records.{column}[{i}]"),
                    table,
                    id: u64::from(*max),
                    len,
                });
            }
        }
        Ok(())
    }

    /// The records as flat rows, after [`DecodedBatch::check_references`]
    /// against the same dictionary.
    pub fn rows<'a>(
        &'a self,
        dict: &'a Dictionary,
    ) -> Result<impl Iterator<Item = Row<'a>> + 'a, DecodeError> {
        self.check_references(dict)?;
        Ok((0..self.len()).map(move |i| self.row(dict, i)))
    }

    fn row<'a>(&'a self, dict: &'a Dictionary, i: usize) -> Row<'a> {
        let c = &self.records;
        let at = |v: &[u32]| v.get(i).copied().unwrap_or(0);
        let endpoint = dict.endpoint(at(&c.endpoint));
        let identity = dict.identity(at(&c.identity));
        let agent = dict.agent(at(&c.agent));
        let outcome = dict.outcome(at(&c.outcome));
        let s = |id: u32| dict.string(id);
        let method = Method::try_from(endpoint.method).unwrap_or(Method::Unspecified);
        let auth = AuthMethod::try_from(identity.auth_method).unwrap_or(AuthMethod::Unspecified);
        let has_agent = at(&c.agent) != 0;
        let ai =
            c.ai.binary_search_by_key(&i, |(index, _)| *index as usize)
                .ok()
                .and_then(|k| c.ai.get(k))
                .map(|(_, f)| f);
        let ai_text = |id: fn(&ai::AiFigures) -> u32| ai.and_then(|f| s(id(f)));
        Row {
            started_at_ms: c.started_at_ms.get(i).copied().unwrap_or(0),
            route_id: s(endpoint.route_id),
            route_name: s(endpoint.route_name),
            service_id: s(endpoint.service_id),
            service_name: s(endpoint.service_name),
            workspace: s(endpoint.workspace),
            method: method_name(method).or_else(|| s(endpoint.method_text)),
            host: s(endpoint.host),
            path: s(endpoint.path),
            status: u16::try_from(outcome.status).ok().filter(|&st| st != 0),
            response_source: source_name(
                ResponseSource::try_from(outcome.source).unwrap_or(ResponseSource::Unspecified),
            ),
            latency_total_us: c.latency_total_us.get(i).copied().unwrap_or(0),
            latency_upstream_us: c.latency_upstream_us.get(i).copied().flatten(),
            request_bytes: c.request_bytes.get(i).copied().unwrap_or(0),
            response_bytes: c.response_bytes.get(i).copied().unwrap_or(0),
            auth_method: auth_method_name(auth),
            trust: trust_name(Trust::try_from(identity.trust).unwrap_or(Trust::Unspecified)),
            anonymous: identity.anonymous,
            consumer_id: s(identity.consumer_id),
            consumer_username: s(identity.consumer_username),
            consumer_custom_id: s(identity.consumer_custom_id),
            credential: s(identity.credential),
            consumer_groups: Groups {
                ids: &identity.consumer_groups,
                strings: &dict.strings,
            },
            subject: s(identity.subject),
            issuer: s(identity.issuer),
            client_id: s(identity.client_id),
            client_address: c
                .client_inline
                .binary_search_by_key(&i, |(index, _)| *index as usize)
                .ok()
                .and_then(|k| c.client_inline.get(k))
                .and_then(|(_, span)| c.client_text.get(span.clone()))
                .or_else(|| s(at(&c.client))),
            agent_category: has_agent.then(|| {
                agent_category_name(
                    AgentCategory::try_from(agent.category).unwrap_or(AgentCategory::Unspecified),
                )
            }),
            agent_name: s(agent.name),
            request_id: c.request_id.get(i).and_then(id_ref),
            trace_id: c.trace_id.get(i).and_then(id_ref),
            sample_weight: c.sample_weight.get(i).copied().unwrap_or(1.0),
            ai_provider: ai_text(|f| f.provider),
            ai_request_model: ai_text(|f| f.request_model),
            ai_response_model: ai_text(|f| f.response_model),
            ai_request_mode: ai_text(|f| f.request_mode),
            ai_prompt_tokens: ai.map(|f| f.prompt_tokens),
            ai_completion_tokens: ai.map(|f| f.completion_tokens),
            ai_total_tokens: ai.map(|f| f.total_tokens),
            ai_cost_micros: ai.map(|f| f.cost_micros),
            ai_llm_latency_ms: ai.and_then(|f| f.llm_latency_ms),
            ai_time_to_first_token_ms: ai.and_then(|f| f.time_to_first_token_ms),
            ai_cache_status: ai_text(|f| f.cache_status),
            ai_cache_fetch_latency_ms: ai.and_then(|f| f.cache_fetch_latency_ms),
            ai_embeddings_model: ai_text(|f| f.embeddings_model),
            ai_guardrail_blocks: ai.map(|f| f.guardrail_blocks),
            ai_guardrail: ai_text(|f| f.guardrail),
            ai_mcp_tool_calls: ai.map(|f| f.mcp_tool_calls),
            ai_mcp_tool: ai_text(|f| f.mcp_tool),
            ai_calls: ai.map(|f| f.calls),
            ai_unreadable: ai.map(|f| f.unreadable),
        }
    }
}

fn id_ref(id: &v1::Id) -> Option<IdRef<'_>> {
    match &id.value {
        Some(v1::id::Value::Binary(b)) => {
            <[u8; 16]>::try_from(b.as_slice()).ok().map(IdRef::Binary)
        }
        Some(v1::id::Value::Text(t)) => Some(IdRef::Text(t)),
        None => None,
    }
}
