//! The producer's session dictionary: the five tables of one generation,
//! interning each record's repeated values to ids, and writing the
//! definitions a batch must carry.

use core::hash::BuildHasher;
use std::cell::Cell;

use foldhash::fast::FixedState;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use super::table::{Entry, Table};
use super::{AppendError, Size, truncate};
use crate::TableLens;
use crate::coding::parse_canonical_uuid;
use crate::limits::{MAX_GROUPS, MAX_STRING_BYTES};
use crate::record::{AgentRef, IdentityRef, Record};
use crate::v1;

/// The producer's five tables for the current generation.
pub(super) struct ProducerDictionary {
    state: FixedState,
    /// Lookup keys are written here, reused across appends.
    scratch: Vec<u8>,
    pub(super) generation: u32,
    /// Bytes of the lookup keys the endpoint and identity tables hold: an
    /// identity's key carries its strings, groups included, so it can far
    /// outweigh the ids the batches carry for it.
    key_bytes: u64,
    strings: Table<Str>,
    endpoints: Table<EndpointKey>,
    identities: Table<IdentityEntry>,
    agents: Table<AgentKey>,
    outcomes: Table<OutcomeKey>,
    /// The last [`ProducerDictionary::body_len`] and the state it was
    /// worked out for: the outbox asks after every record, and the answer
    /// changes only when an entry is defined or acknowledged.
    body_len_memo: Cell<Option<(u32, TableLens, TableLens, usize)>>,
}

impl ProducerDictionary {
    pub(super) fn new(state: FixedState) -> Self {
        ProducerDictionary {
            state,
            scratch: Vec::with_capacity(512),
            generation: 0,
            key_bytes: 0,
            strings: Table::new(3),
            endpoints: Table::new(5),
            identities: Table::new(7),
            agents: Table::new(9),
            outcomes: Table::new(11),
            body_len_memo: Cell::new(None),
        }
    }

    pub(super) fn string(&mut self, s: &str) -> Result<u32, AppendError> {
        if s.is_empty() {
            return Ok(0);
        }
        let s = truncate(s, MAX_STRING_BYTES);
        let hash = self.state.hash_one(s);
        if let Some(id) = self.strings.find(hash, |e| &*e.0 == s) {
            return Ok(id);
        }
        self.strings
            .insert(hash, Str(s.into()))
            .ok_or(AppendError::DictionaryFull)
    }

    /// Interns each string of `strs` into `ids`; only on a miss of the
    /// entry that holds them, so a known endpoint or identity costs one
    /// lookup, not one per string.
    fn strings<const N: usize>(&mut self, strs: &[&str; N]) -> Result<[u32; N], AppendError> {
        let mut ids = [0u32; N];
        for (id, s) in ids.iter_mut().zip(strs) {
            *id = self.string(s)?;
        }
        Ok(ids)
    }

    pub(super) fn endpoint(&mut self, r: &Record<'_>) -> Result<u32, AppendError> {
        let method_text = if r.method == v1::Method::Other {
            r.method_text
        } else {
            ""
        };
        let strs = [
            r.route.route_id,
            r.route.route_name,
            r.route.service_id,
            r.route.service_name,
            r.route.workspace,
            method_text,
            r.host,
            r.path,
        ]
        .map(|s| truncate(s, MAX_STRING_BYTES));
        let method = r.method as i32;
        let head = method.to_le_bytes();
        let key = LookupKey {
            head: &head,
            strs: strs.iter().copied(),
        };
        let hash = key.hash(&self.state, &mut self.scratch);
        let scratch = &self.scratch;
        if let Some(id) = self.endpoints.find(hash, |e| *e.key == **scratch) {
            return Ok(id);
        }
        let entry = EndpointKey {
            key: self.scratch.as_slice().into(),
            strings: self.strings(&strs)?,
            method,
        };
        let key_len = entry.key.len() as u64;
        let id = self
            .endpoints
            .insert(hash, entry)
            .ok_or(AppendError::DictionaryFull)?;
        self.key_bytes = self.key_bytes.saturating_add(key_len);
        Ok(id)
    }

    pub(super) fn outcome(
        &mut self,
        status: u16,
        source: v1::ResponseSource,
    ) -> Result<u32, AppendError> {
        let status = if (100..=999).contains(&status) {
            status
        } else {
            0
        };
        let key = OutcomeKey {
            status: u32::from(status),
            source: source as i32,
        };
        let hash = self.state.hash_one(key);
        if let Some(id) = self.outcomes.find(hash, |e| *e == key) {
            return Ok(id);
        }
        self.outcomes
            .insert(hash, key)
            .ok_or(AppendError::DictionaryFull)
    }

    pub(super) fn agent(&mut self, agent: &AgentRef<'_>) -> Result<u32, AppendError> {
        let category = agent.category as i32;
        let name = truncate(agent.name, MAX_STRING_BYTES);
        let hash = self.state.hash_one((category, name));
        let strings = &self.strings;
        let found = self.agents.find(hash, |e| {
            e.category == category && str_eq(strings, e.name, name)
        });
        if let Some(id) = found {
            return Ok(id);
        }
        let entry = AgentKey {
            category,
            name: self.string(name)?,
        };
        self.agents
            .insert(hash, entry)
            .ok_or(AppendError::DictionaryFull)
    }

    pub(super) fn identity(
        &mut self,
        id: &IdentityRef<'_>,
        scratch: &mut Vec<u32>,
    ) -> Result<u32, AppendError> {
        let strs = [
            id.consumer_id,
            id.consumer_username,
            id.consumer_custom_id,
            id.credential,
            id.subject,
            id.issuer,
            id.client_id,
        ]
        .map(|s| truncate(s, MAX_STRING_BYTES));
        let groups = || {
            id.consumer_groups
                .iter()
                .filter(|g| !g.is_empty())
                .take(MAX_GROUPS)
                .map(|g| truncate(g, MAX_STRING_BYTES))
        };
        let (auth_method, trust) = (id.auth_method as i32, id.trust as i32);
        let mut head = [0u8; 9];
        head[..4].copy_from_slice(&auth_method.to_le_bytes());
        head[4..8].copy_from_slice(&trust.to_le_bytes());
        head[8] = u8::from(id.anonymous);
        let key = LookupKey {
            head: &head,
            strs: strs.iter().copied().chain(groups()),
        };
        let hash = key.hash(&self.state, &mut self.scratch);
        let key_bytes = &self.scratch;
        if let Some(found) = self.identities.find(hash, |e| *e.key == **key_bytes) {
            return Ok(found);
        }
        let entry_key: Box<[u8]> = self.scratch.as_slice().into();
        let key_len = entry_key.len() as u64;
        scratch.clear();
        for group in groups() {
            scratch.push(self.string(group)?);
        }
        let entry = IdentityEntry {
            key: entry_key,
            auth_method,
            trust,
            anonymous: id.anonymous,
            strings: self.strings(&strs)?,
            groups: scratch.as_slice().into(),
        };
        let id = self
            .identities
            .insert(hash, entry)
            .ok_or(AppendError::DictionaryFull)?;
        self.key_bytes = self.key_bytes.saturating_add(key_len);
        Ok(id)
    }

    pub(super) fn lens(&self) -> TableLens {
        [
            self.strings.len(),
            self.endpoints.len(),
            self.identities.len(),
            self.agents.len(),
            self.outcomes.len(),
        ]
    }

    pub(super) fn acked(&self) -> TableLens {
        [
            self.strings.acked(),
            self.endpoints.acked(),
            self.identities.acked(),
            self.agents.acked(),
            self.outcomes.acked(),
        ]
    }

    pub(super) fn raise_acked(&mut self, lens: &TableLens) {
        let [s, e, i, a, o] = *lens;
        self.strings.set_acked(self.strings.acked().max(s));
        self.endpoints.set_acked(self.endpoints.acked().max(e));
        self.identities.set_acked(self.identities.acked().max(i));
        self.agents.set_acked(self.agents.acked().max(a));
        self.outcomes.set_acked(self.outcomes.acked().max(o));
    }

    pub(super) fn lower_acked_to_zero(&mut self) {
        self.strings.set_acked(0);
        self.endpoints.set_acked(0);
        self.identities.set_acked(0);
        self.agents.set_acked(0);
        self.outcomes.set_acked(0);
    }

    /// Roughly what the dictionary holds in memory: its definitions plus
    /// the lookup keys. The builder starts a new generation past its cap.
    pub(super) fn memory_bytes(&self) -> u64 {
        self.total_bytes().saturating_add(self.key_bytes)
    }

    pub(super) fn total_bytes(&self) -> u64 {
        let lens = self.lens();
        self.def_bytes(&[0; 5], &lens)
    }

    fn def_bytes(&self, from: &TableLens, to: &TableLens) -> u64 {
        let [s0, e0, i0, a0, o0] = *from;
        let [s1, e1, i1, a1, o1] = *to;
        [
            self.strings
                .def_bytes_to(s1)
                .saturating_sub(self.strings.def_bytes_to(s0)),
            self.endpoints
                .def_bytes_to(e1)
                .saturating_sub(self.endpoints.def_bytes_to(e0)),
            self.identities
                .def_bytes_to(i1)
                .saturating_sub(self.identities.def_bytes_to(i0)),
            self.agents
                .def_bytes_to(a1)
                .saturating_sub(self.agents.def_bytes_to(a0)),
            self.outcomes
                .def_bytes_to(o1)
                .saturating_sub(self.outcomes.def_bytes_to(o0)),
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add)
    }

    /// Body length of the `Dictionary` defining everything not acknowledged.
    pub(super) fn body_len(&self) -> usize {
        let (acked, lens) = (self.acked(), self.lens());
        if let Some((generation, a, l, len)) = self.body_len_memo.get()
            && (generation, a, l) == (self.generation, acked, lens)
        {
            return len;
        }
        let len = self.range_body_len(&acked, &lens);
        self.body_len_memo
            .set(Some((self.generation, acked, lens, len)));
        len
    }

    /// Body length of a `Dictionary` defining ids `from+1..=to` per table.
    fn range_body_len(&self, from: &TableLens, to: &TableLens) -> usize {
        let mut len = Size::default();
        if self.generation != 0 {
            len.varint(1, u64::from(self.generation));
        }
        for ((f, t), field) in from.iter().zip(to).zip([2u32, 4, 6, 8, 10]) {
            if t > f {
                len.varint(field, u64::from(f.saturating_add(1)));
            }
        }
        len.add(usize::try_from(self.def_bytes(from, to)).unwrap_or(usize::MAX));
        len.0
    }

    /// Writes the `dictionary` field defining everything past `acked`.
    pub(super) fn encode(&self, acked: &TableLens, buf: &mut Vec<u8>) {
        self.encode_range(acked, &self.lens(), buf);
    }

    pub(super) fn encode_range(&self, from: &TableLens, to: &TableLens, buf: &mut Vec<u8>) {
        encode_key(7, WireType::LengthDelimited, buf);
        encode_varint(self.range_body_len(from, to) as u64, buf);
        if self.generation != 0 {
            encode_key(1, WireType::Varint, buf);
            encode_varint(u64::from(self.generation), buf);
        }
        let [s0, e0, i0, a0, o0] = *from;
        let [s1, e1, i1, a1, o1] = *to;
        encode_defs(&self.strings, 2, s0, s1, buf);
        encode_defs(&self.endpoints, 4, e0, e1, buf);
        encode_defs(&self.identities, 6, i0, i1, buf);
        encode_defs(&self.agents, 8, a0, a1, buf);
        encode_defs(&self.outcomes, 10, o0, o1, buf);
    }

    pub(super) fn next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.key_bytes = 0;
        self.strings.clear();
        self.endpoints.clear();
        self.identities.clear();
        self.agents.clear();
        self.outcomes.clear();
    }
}

/// Writes `*_from` and the definitions of ids `acked+1..=len`.
fn encode_defs<T: Entry>(
    table: &Table<T>,
    from_field: u32,
    acked: u32,
    len: u32,
    buf: &mut Vec<u8>,
) {
    if len <= acked {
        return;
    }
    let from = acked.saturating_add(1);
    encode_key(from_field, WireType::Varint, buf);
    encode_varint(u64::from(from), buf);
    for entry in table.range(from, len) {
        let msg = entry.to_msg();
        encode_key(from_field.saturating_add(1), WireType::LengthDelimited, buf);
        encode_varint(msg.encoded_len() as u64, buf);
        msg.encode_raw(buf);
    }
}

/// True when string `id` is `s` (id 0 is the empty string).
fn str_eq(strings: &Table<Str>, id: u32, s: &str) -> bool {
    match strings.get(id) {
        Some(e) => *e.0 == *s,
        None => id == 0 && s.is_empty(),
    }
}

/// The lookup key of an endpoint or identity: a few fixed bytes, then each
/// string with its length in front. It is hashed and compared in place, and
/// copied only when a new entry is stored, because most appends hit.
struct LookupKey<'a, I> {
    head: &'a [u8],
    strs: I,
}

impl<'a, I: Iterator<Item = &'a str> + Clone> LookupKey<'a, I> {
    /// Writes the key into `scratch` and hashes it in one pass.
    fn hash(&self, state: &FixedState, scratch: &mut Vec<u8>) -> u64 {
        scratch.clear();
        scratch.extend_from_slice(self.head);
        for s in self.strs.clone() {
            scratch.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
            scratch.extend_from_slice(s.as_bytes());
        }
        state.hash_one(scratch.as_slice())
    }
}

struct Str(Box<str>);

impl Entry for Str {
    type Msg = v1::Symbol;

    fn to_msg(&self) -> v1::Symbol {
        let value = match parse_canonical_uuid(&self.0) {
            Some(bytes) => v1::symbol::Value::Uuid(bytes.to_vec()),
            None => v1::symbol::Value::Text(self.0.to_string()),
        };
        v1::Symbol { value: Some(value) }
    }
}

/// Strings in `.proto` order: route id, route name, service id, service
/// name, workspace, method text, host, path.
struct EndpointKey {
    /// The lookup key: method and strings, so that a known endpoint is found
    /// with one hash and one comparison, without visiting the string table.
    key: Box<[u8]>,
    strings: [u32; 8],
    method: i32,
}

impl Entry for EndpointKey {
    type Msg = v1::Endpoint;

    fn to_msg(&self) -> v1::Endpoint {
        let [
            route_id,
            route_name,
            service_id,
            service_name,
            workspace,
            method_text,
            host,
            path,
        ] = self.strings;
        v1::Endpoint {
            route_id,
            route_name,
            service_id,
            service_name,
            workspace,
            method: self.method,
            method_text,
            host,
            path,
        }
    }
}

/// Strings in order: consumer id, username, custom id, credential, subject,
/// issuer, client id.
struct IdentityEntry {
    /// The lookup key, as for [`EndpointKey`].
    key: Box<[u8]>,
    auth_method: i32,
    trust: i32,
    anonymous: bool,
    strings: [u32; 7],
    groups: Box<[u32]>,
}

impl Entry for IdentityEntry {
    type Msg = v1::Identity;

    fn to_msg(&self) -> v1::Identity {
        let [
            consumer_id,
            consumer_username,
            consumer_custom_id,
            credential,
            subject,
            issuer,
            client_id,
        ] = self.strings;
        v1::Identity {
            auth_method: self.auth_method,
            trust: self.trust,
            consumer_id,
            consumer_username,
            consumer_custom_id,
            credential,
            consumer_groups: self.groups.to_vec(),
            subject,
            issuer,
            client_id,
            anonymous: self.anonymous,
        }
    }
}

struct AgentKey {
    category: i32,
    name: u32,
}

impl Entry for AgentKey {
    type Msg = v1::Agent;

    fn to_msg(&self) -> v1::Agent {
        v1::Agent {
            category: self.category,
            name: self.name,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct OutcomeKey {
    status: u32,
    source: i32,
}

impl Entry for OutcomeKey {
    type Msg = v1::Outcome;

    fn to_msg(&self) -> v1::Outcome {
        v1::Outcome {
            status: self.status,
            source: self.source,
        }
    }
}
