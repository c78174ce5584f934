//! The producer's session dictionary: the five tables of one generation,
//! interning each record's repeated values to ids (or, for a client address
//! not yet worth an entry, handing it back to travel inline), and writing
//! the definitions a batch must carry.

use core::hash::BuildHasher;
use core::net::IpAddr;
use std::cell::Cell;

use foldhash::fast::FixedState;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use super::InlineAddresses;
use super::admission::Admission;
use super::memo::{HashMemo, IdMemo};

/// What the identity memo keeps for a key that stands for no caller: an id
/// no caller gets (a table is out of ids before it).
const NO_IDENTITY: u32 = u32::MAX;
use super::table::{Entry, Span, Table, Texts};
use super::{AppendError, Size, truncate};
use crate::TableLens;
use crate::address::parse_canonical;
use crate::bytes;
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
    strings: Table<Str>,
    /// The string table's texts.
    texts: Texts,
    endpoints: Table<EndpointKey>,
    identities: Table<IdentityEntry>,
    agents: Table<AgentKey>,
    outcomes: Table<OutcomeKey>,
    /// Bytes of the acknowledged definitions ([`Table::def_bytes_to`] of
    /// each table's acknowledged length, summed).
    acked_def_bytes: u64,
    /// The last [`ProducerDictionary::body_len`] and the state it was
    /// worked out for: the outbox asks after every record, and the answer
    /// changes only when an entry is defined or acknowledged.
    body_len_memo: Cell<Option<(u32, TableLens, TableLens, usize)>>,
    /// Client addresses met once; `None` when addresses are always defined.
    /// It outlives generations: it tracks traffic, not ids.
    admission: Option<Admission>,
    /// Endpoint, identity and agent ids by the producer's keys for them,
    /// and outcome ids by the outcome.
    endpoint_memo: IdMemo,
    identity_memo: HashMemo,
    agent_memo: IdMemo,
    outcome_memo: IdMemo,
    /// Client addresses' string ids by their text.
    client_memo: HashMemo,
}

/// A record's client address: a string id, or raw bytes for the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Client {
    Id(u32),
    Inline(IpAddr),
}

impl ProducerDictionary {
    pub(super) fn new(state: FixedState, inline: InlineAddresses) -> Self {
        ProducerDictionary {
            admission: match inline {
                InlineAddresses::Never => None,
                InlineAddresses::Measured => Some(Admission::new(false)),
                InlineAddresses::Always => Some(Admission::new(true)),
            },
            state: state.clone(),
            scratch: Vec::with_capacity(512),
            generation: 0,
            strings: Table::new(3, state.clone()),
            texts: Texts::default(),
            endpoints: Table::new(5, state.clone()),
            identities: Table::new(7, state.clone()),
            agents: Table::new(9, state.clone()),
            outcomes: Table::new(11, state.clone()),
            acked_def_bytes: 0,
            body_len_memo: Cell::new(None),
            endpoint_memo: IdMemo::new(),
            identity_memo: HashMemo::callers(),
            agent_memo: IdMemo::few(),
            outcome_memo: IdMemo::few(),
            client_memo: HashMemo::addresses(),
        }
    }

    pub(super) fn string(&mut self, s: &str) -> Result<u32, AppendError> {
        if s.is_empty() {
            return Ok(0);
        }
        let s = truncate(s, MAX_STRING_BYTES);
        let hash = bytes::hash(&self.state, s.as_bytes());
        match self.find_string(hash, s) {
            Some(id) => Ok(id),
            None => self.insert_string(hash, s),
        }
    }

    fn find_string(&self, hash: u64, s: &str) -> Option<u32> {
        let texts = &self.texts;
        self.strings.find(hash, |e| {
            bytes::same(texts.get(e.span).as_bytes(), s.as_bytes())
        })
    }

    fn insert_string(&mut self, hash: u64, s: &str) -> Result<u32, AppendError> {
        let span = self.texts.push(s).ok_or(AppendError::DictionaryFull)?;
        self.strings
            .insert(hash, Str::new(span, s), &self.texts)
            .ok_or(AppendError::DictionaryFull)
    }

    pub(super) fn stop_inlining(&mut self) {
        self.admission = None;
    }

    /// The hash of the client address `text` when the memo has its id.
    pub(super) fn knows_client(&self, text: &[u8]) -> Option<u64> {
        let hash = bytes::hash(&self.state, text);
        self.client_memo.get(hash).map(|_| hash)
    }

    /// The client address's string id; or, for an address met for the
    /// first time lately, the address itself, to travel inline. `known` is
    /// its hash from [`ProducerDictionary::knows_client`], or zero.
    pub(super) fn client(&mut self, s: &str, known: u64) -> Result<Client, AppendError> {
        if let Some(admission) = &mut self.admission {
            admission.record();
        }
        let hash = match known {
            0 => bytes::hash(&self.state, s.as_bytes()),
            known => known,
        };
        if let Some(id) = self.client_memo.get(hash) {
            return Ok(Client::Id(id));
        }
        let client = self.client_by_text(s, hash)?;
        if let Client::Id(id) = client {
            self.client_memo.put(hash, id);
            self.client_memo.fit(self.strings.len());
        }
        Ok(client)
    }

    /// The client address `s`, whose hash is `hash`, by the string table.
    fn client_by_text(&mut self, s: &str, hash: u64) -> Result<Client, AppendError> {
        // The first strings of a generation get one-byte ids, and the
        // addresses among them are the busiest: define those at once.
        let Some(admission) = &mut self
            .admission
            .as_mut()
            .filter(|_| self.strings.len() >= 127)
        else {
            return self.string(s).map(Client::Id);
        };
        if s.is_empty() || s.len() > MAX_STRING_BYTES {
            return self.string(s).map(Client::Id);
        }
        let texts = &self.texts;
        if let Some(id) = self.strings.find(hash, |e| {
            bytes::same(texts.get(e.span).as_bytes(), s.as_bytes())
        }) {
            return Ok(Client::Id(id));
        }
        if let Some(ip) = parse_canonical(s)
            && !admission.define(hash)
        {
            return Ok(Client::Inline(ip));
        }
        self.insert_string(hash, s).map(Client::Id)
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
        if let Some(id) = self.endpoint_memo.get(r.memo.endpoint) {
            return Ok(id);
        }
        let id = self.endpoint_by_key(r)?;
        self.endpoint_memo.put(r.memo.endpoint, id);
        self.endpoint_memo.fit(self.endpoints.len());
        Ok(id)
    }

    pub(super) fn knows_endpoint(&self, memo: u64) -> bool {
        self.endpoint_memo.get(memo).is_some()
    }

    fn endpoint_by_key(&mut self, r: &Record<'_>) -> Result<u32, AppendError> {
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
        if let Some(id) = self.endpoints.find(hash, |e| bytes::same(&e.key, scratch)) {
            return Ok(id);
        }
        let entry = EndpointKey {
            key: self.scratch.as_slice().into(),
            strings: self.strings(&strs)?,
            method,
        };
        self.endpoints
            .insert(hash, entry, &self.texts)
            .ok_or(AppendError::DictionaryFull)
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
        // The key is the outcome itself, so it keeps the memo's contract;
        // the high bit keeps it from being 0.
        let memo = 1 << 63 | u64::from(status) << 32 | u64::from(source as i32 as u32);
        if let Some(id) = self.outcome_memo.get(memo) {
            return Ok(id);
        }
        let key = OutcomeKey {
            status: u32::from(status),
            source: source as i32,
        };
        let hash = self.state.hash_one(key);
        let id = match self.outcomes.find(hash, |e| *e == key) {
            Some(id) => id,
            None => self
                .outcomes
                .insert(hash, key, &self.texts)
                .ok_or(AppendError::DictionaryFull)?,
        };
        self.outcome_memo.put(memo, id);
        Ok(id)
    }

    pub(super) fn agent(&mut self, agent: &AgentRef<'_>, memo: u64) -> Result<u32, AppendError> {
        if let Some(id) = self.agent_memo.get(memo) {
            return Ok(id);
        }
        let id = self.agent_by_key(agent)?;
        self.agent_memo.put(memo, id);
        Ok(id)
    }

    fn agent_by_key(&mut self, agent: &AgentRef<'_>) -> Result<u32, AppendError> {
        let category = agent.category as i32;
        let name = truncate(agent.name, MAX_STRING_BYTES);
        let hash = self.state.hash_one((category, name));
        let (strings, texts) = (&self.strings, &self.texts);
        let found = self.agents.find(hash, |e| {
            e.category == category && str_eq(strings, texts, e.name, name)
        });
        if let Some(id) = found {
            return Ok(id);
        }
        let entry = AgentKey {
            hash,
            category,
            name: self.string(name)?,
        };
        self.agents
            .insert(hash, entry, &self.texts)
            .ok_or(AppendError::DictionaryFull)
    }

    pub(super) fn identity(
        &mut self,
        id: &IdentityRef<'_>,
        memo: u64,
        scratch: &mut Vec<u32>,
    ) -> Result<u32, AppendError> {
        if let Some(found) = self.identity_by_key(memo).filter(|&id| id != 0) {
            return Ok(found);
        }
        let found = self.identity_by_content(id, scratch)?;
        if memo != 0 && found != NO_IDENTITY {
            self.identity_memo.put(memo, found);
            self.identity_memo.fit(self.identities.len());
        }
        Ok(found)
    }

    /// The id of the caller that the producer's key `memo` stands for, 0
    /// for a key that stands for no caller; `None` for a key not met in
    /// this generation (and for key 0).
    pub(super) fn identity_by_key(&self, memo: u64) -> Option<u32> {
        if memo == 0 {
            return None;
        }
        self.identity_memo
            .get(memo)
            .map(|id| if id == NO_IDENTITY { 0 } else { id })
    }

    /// Remembers that the producer's key `memo` stands for no caller.
    pub(super) fn no_identity(&mut self, memo: u64) {
        if memo != 0 {
            self.identity_memo.put(memo, NO_IDENTITY);
        }
    }

    fn identity_by_content(
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
        let (strings, texts) = (&self.strings, &self.texts);
        let same = |e: &IdentityEntry| {
            (e.auth_method, e.trust, e.anonymous) == (auth_method, trust, id.anonymous)
                && e.strings
                    .iter()
                    .zip(&strs)
                    .all(|(&sid, s)| str_eq(strings, texts, sid, s))
                && e.groups.len() == groups().count()
                && e.groups
                    .iter()
                    .zip(groups())
                    .all(|(&sid, s)| str_eq(strings, texts, sid, s))
        };
        if let Some(found) = self.identities.find(hash, same) {
            return Ok(found);
        }
        scratch.clear();
        for group in groups() {
            scratch.push(self.string(group)?);
        }
        let entry = IdentityEntry {
            hash,
            auth_method,
            trust,
            anonymous: id.anonymous,
            strings: self.strings(&strs)?,
            groups: scratch.as_slice().into(),
        };
        self.identities
            .insert(hash, entry, &self.texts)
            .ok_or(AppendError::DictionaryFull)
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
        self.count_acked_def_bytes();
    }

    pub(super) fn lower_acked_to_zero(&mut self) {
        self.strings.set_acked(0);
        self.endpoints.set_acked(0);
        self.identities.set_acked(0);
        self.agents.set_acked(0);
        self.outcomes.set_acked(0);
        self.count_acked_def_bytes();
    }

    /// What the dictionary holds in memory: its tables as allocated, with
    /// their texts and lookup keys. The builder starts a new generation
    /// past its cap. The admission table's fixed 64 KiB and the memos' 128
    /// KiB are not counted: a new generation would not shrink them.
    pub(super) fn memory_bytes(&self) -> u64 {
        [
            self.strings.memory_bytes(),
            self.texts.memory_bytes(),
            self.endpoints.memory_bytes(),
            self.identities.memory_bytes(),
            self.agents.memory_bytes(),
            self.outcomes.memory_bytes(),
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
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

    /// Bytes of the definitions not acknowledged, without the prefixes of
    /// the `Dictionary` around them. Asked after every record: the
    /// acknowledged part is kept, so this is five loads.
    pub(super) fn pending_def_bytes(&self) -> usize {
        let defined = [
            self.strings.def_bytes_to(self.strings.len()),
            self.endpoints.def_bytes_to(self.endpoints.len()),
            self.identities.def_bytes_to(self.identities.len()),
            self.agents.def_bytes_to(self.agents.len()),
            self.outcomes.def_bytes_to(self.outcomes.len()),
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add);
        usize::try_from(defined.saturating_sub(self.acked_def_bytes)).unwrap_or(usize::MAX)
    }

    /// Notes the bytes of the acknowledged definitions, after the
    /// acknowledgements changed.
    fn count_acked_def_bytes(&mut self) {
        self.acked_def_bytes = self.def_bytes(&[0; 5], &self.acked());
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

    /// Writes the `dictionary` field defining everything past `acked`,
    /// from the definitions the tables keep until they are acknowledged
    /// ([`Table::write_defs`]); as [`ProducerDictionary::encode_range`]
    /// writes it.
    pub(super) fn encode(&mut self, acked: &TableLens, buf: &mut Vec<u8>) {
        let to = self.lens();
        #[cfg(debug_assertions)]
        let start = buf.len();
        encode_key(7, WireType::LengthDelimited, buf);
        encode_varint(self.range_body_len(acked, &to) as u64, buf);
        if self.generation != 0 {
            encode_key(1, WireType::Varint, buf);
            encode_varint(u64::from(self.generation), buf);
        }
        let [s0, e0, i0, a0, o0] = *acked;
        let [s1, e1, i1, a1, o1] = to;
        let texts = &self.texts;
        write_defs(&mut self.strings, texts, 2, s0, s1, buf);
        write_defs(&mut self.endpoints, texts, 4, e0, e1, buf);
        write_defs(&mut self.identities, texts, 6, i0, i1, buf);
        write_defs(&mut self.agents, texts, 8, a0, a1, buf);
        write_defs(&mut self.outcomes, texts, 10, o0, o1, buf);
        #[cfg(debug_assertions)]
        {
            let mut fresh = Vec::new();
            self.encode_range(acked, &to, &mut fresh);
            debug_assert!(
                buf.get(start..) == Some(&fresh[..]),
                "kept definitions differ"
            );
        }
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
        encode_defs(&self.strings, &self.texts, 2, s0, s1, buf);
        encode_defs(&self.endpoints, &self.texts, 4, e0, e1, buf);
        encode_defs(&self.identities, &self.texts, 6, i0, i1, buf);
        encode_defs(&self.agents, &self.texts, 8, a0, a1, buf);
        encode_defs(&self.outcomes, &self.texts, 10, o0, o1, buf);
    }

    pub(super) fn next_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.strings.clear();
        self.texts.clear();
        self.endpoints.clear();
        self.identities.clear();
        self.agents.clear();
        self.outcomes.clear();
        self.endpoint_memo.clear();
        self.identity_memo.clear();
        self.agent_memo.clear();
        self.outcome_memo.clear();
        self.client_memo.clear();
        self.count_acked_def_bytes();
    }
}

/// Writes `*_from` and the definitions of ids `acked+1..=len`.
fn encode_defs<T: Entry>(
    table: &Table<T>,
    texts: &Texts,
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
    table.encode_defs(texts, from, len, buf);
}

/// [`encode_defs`] from the definitions `table` keeps.
fn write_defs<T: Entry>(
    table: &mut Table<T>,
    texts: &Texts,
    from_field: u32,
    acked: u32,
    len: u32,
    buf: &mut Vec<u8>,
) {
    let from = acked.saturating_add(1);
    if len <= acked {
        // Nothing to define: what the table kept is let go.
        table.write_defs(texts, from, acked, buf);
        return;
    }
    encode_key(from_field, WireType::Varint, buf);
    encode_varint(u64::from(from), buf);
    table.write_defs(texts, from, len, buf);
}

/// True when string `id` is `s` (id 0 is the empty string).
fn str_eq(strings: &Table<Str>, texts: &Texts, id: u32, s: &str) -> bool {
    match strings.get(id) {
        Some(e) => bytes::same(texts.get(e.span).as_bytes(), s.as_bytes()),
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
        bytes::hash(state, scratch)
    }
}

/// A string entry: where its text lies in [`Texts`], and whether it
/// travels as a UUID (found once, when it is stored: parsing a UUID is
/// about a thousand instructions in Wasm, and a definition's size is asked
/// for again whenever a batch is sized).
struct Str {
    span: Span,
    uuid: bool,
}

impl Str {
    fn new(span: Span, text: &str) -> Self {
        Str {
            span,
            uuid: parse_canonical_uuid(text).is_some(),
        }
    }

    /// The `Symbol`'s one field and its bytes: `uuid` (2) for a canonical
    /// UUID, else `text` (1).
    fn value<'a>(&self, texts: &'a Texts) -> (u32, SymbolBytes<'a>) {
        let text = texts.get(self.span);
        let uuid = if self.uuid {
            parse_canonical_uuid(text)
        } else {
            None
        };
        match uuid {
            Some(uuid) => (2, SymbolBytes::Uuid(uuid)),
            None => (1, SymbolBytes::Text(text.as_bytes())),
        }
    }
}

impl Entry for Str {
    type Msg = v1::Symbol;

    fn hash(&self, state: &FixedState, texts: &Texts) -> u64 {
        bytes::hash(state, texts.get(self.span).as_bytes())
    }

    fn to_msg(&self, texts: &Texts) -> v1::Symbol {
        let value = match self.value(texts) {
            (_, SymbolBytes::Uuid(bytes)) => v1::symbol::Value::Uuid(bytes.to_vec()),
            (_, SymbolBytes::Text(_)) => v1::symbol::Value::Text(texts.get(self.span).to_owned()),
        };
        v1::Symbol { value: Some(value) }
    }

    // Written from the text in place: a batch at high cardinality defines
    // thousands of strings, and a message each would be two allocations.
    fn msg_len(&self, texts: &Texts) -> usize {
        if self.uuid {
            field_len(2, 16)
        } else {
            field_len(1, texts.get(self.span).len())
        }
    }

    fn encode_msg(&self, texts: &Texts, buf: &mut Vec<u8>) {
        let (field, bytes) = self.value(texts);
        let bytes = bytes.as_ref();
        encode_varint(field_len(field, bytes.len()) as u64, buf);
        encode_key(field, WireType::LengthDelimited, buf);
        encode_varint(bytes.len() as u64, buf);
        buf.extend_from_slice(bytes);
    }
}

/// Encoded length of a length-delimited field of `len` bytes.
fn field_len(field: u32, len: usize) -> usize {
    key_len(field)
        .saturating_add(encoded_len_varint(len as u64))
        .saturating_add(len)
}

enum SymbolBytes<'a> {
    Uuid([u8; 16]),
    Text(&'a [u8]),
}

impl AsRef<[u8]> for SymbolBytes<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            SymbolBytes::Uuid(bytes) => bytes,
            SymbolBytes::Text(bytes) => bytes,
        }
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

    fn heap_bytes(&self) -> usize {
        self.key.len()
    }

    fn hash(&self, state: &FixedState, _: &Texts) -> u64 {
        bytes::hash(state, &self.key)
    }

    fn to_msg(&self, _: &Texts) -> v1::Endpoint {
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
/// issuer, client id. Unlike an endpoint, an identity keeps no lookup key:
/// there can be hundreds of thousands, and their strings are in the string
/// table already, so a lookup compares through it.
struct IdentityEntry {
    /// Its lookup key's hash: the key itself is not kept.
    hash: u64,
    auth_method: i32,
    trust: i32,
    anonymous: bool,
    strings: [u32; 7],
    groups: Box<[u32]>,
}

impl Entry for IdentityEntry {
    type Msg = v1::Identity;

    fn heap_bytes(&self) -> usize {
        self.groups.len().saturating_mul(4)
    }

    fn hash(&self, _: &FixedState, _: &Texts) -> u64 {
        self.hash
    }

    fn to_msg(&self, _: &Texts) -> v1::Identity {
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
    /// Hashed with the name's text, which lives in the string table.
    hash: u64,
    category: i32,
    name: u32,
}

impl Entry for AgentKey {
    type Msg = v1::Agent;

    fn hash(&self, _: &FixedState, _: &Texts) -> u64 {
        self.hash
    }

    fn to_msg(&self, _: &Texts) -> v1::Agent {
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

    fn hash(&self, state: &FixedState, _: &Texts) -> u64 {
        state.hash_one(*self)
    }

    fn to_msg(&self, _: &Texts) -> v1::Outcome {
        v1::Outcome {
            status: self.status,
            source: self.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn a_string_is_written_as_its_message_would_be() {
        let mut texts = Texts::default();
        let long = "x".repeat(300);
        for text in [
            "a",
            "/v1/orders/{id}",
            "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa",
            "5B1A4B86-0F2E-4A3D-9B7C-2F55E6D1C0AA",
            "5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0a",
            "203.0.113.7",
            "ünïcödé",
            &long,
        ] {
            let entry = Str::new(texts.push(text).unwrap(), text);
            let msg = entry.to_msg(&texts);
            let mut direct = Vec::new();
            entry.encode_msg(&texts, &mut direct);
            assert_eq!(direct, msg.encode_length_delimited_to_vec(), "{text}");
            assert_eq!(entry.msg_len(&texts), msg.encoded_len(), "{text}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn kept_definitions_write_what_fresh_encoding_would_and_go_when_acknowledged() {
        let mut dict = ProducerDictionary::new(FixedState::with_seed(5), InlineAddresses::Never);
        let mut sealed = Vec::new();
        let mut batch = 0u32;
        let mut most_kept = 0;
        let mut check = |dict: &mut ProducerDictionary, step: &str| {
            let (acked, lens) = (dict.acked(), dict.lens());
            let mut fresh = Vec::new();
            dict.encode_range(&acked, &lens, &mut fresh);
            let mut kept = Vec::new();
            dict.encode(&acked, &mut kept);
            assert_eq!(kept, fresh, "{step}, batch {batch}");
            batch += 1;
            lens
        };
        for round in 0..60u32 {
            for i in 0..25 {
                let n = round * 25 + i;
                dict.string(&format!("/v1/item/{n}")).unwrap();
                dict.string("5b1a4b86-0f2e-4a3d-9b7c-2f55e6d1c0aa").unwrap();
                dict.outcome(200 + (n % 5) as u16, v1::ResponseSource::Upstream)
                    .unwrap();
            }
            let before = sealed.last().copied();
            sealed.push(check(&mut dict, "the collector away"));
            if let Some(before) = before {
                // Behind: everything not acknowledged is kept. Caught up:
                // nothing.
                let (acked, now) = (dict.acked()[0], dict.lens()[0]);
                let kept = match before[0] > acked {
                    true => dict.strings.def_bytes_to(now) - dict.strings.def_bytes_to(acked),
                    false => 0,
                };
                assert_eq!(dict.strings.kept_bytes() as u64, kept, "round {round}");
                most_kept = most_kept.max(dict.strings.kept_bytes());
            }
            // Acknowledged late and out of order, now and then lost.
            if round % 4 == 3 {
                let older = sealed[sealed.len() - 3];
                dict.raise_acked(&older);
                check(&mut dict, "acknowledged");
            }
            if round % 17 == 16 {
                dict.lower_acked_to_zero();
                check(&mut dict, "the collector lost the dictionary");
            }
        }
        assert!(
            most_kept > 1000,
            "definitions sent again come from the kept bytes"
        );
        let tables = |d: &ProducerDictionary| {
            [
                d.strings.kept_afresh(),
                d.endpoints.kept_afresh(),
                d.identities.kept_afresh(),
                d.agents.kept_afresh(),
                d.outcomes.kept_afresh(),
            ]
        };
        assert_eq!(tables(&dict), [0; 5], "the kept bytes always held them");
        // Everything acknowledged: nothing kept.
        dict.raise_acked(&dict.lens());
        check(&mut dict, "all acknowledged");
        assert_eq!(dict.strings.kept_bytes() + dict.outcomes.kept_bytes(), 0);
        dict.next_generation();
        dict.string("after").unwrap();
        check(&mut dict, "a new generation");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn pending_definitions_are_counted_through_acknowledgements() {
        let mut dict = ProducerDictionary::new(FixedState::with_seed(3), InlineAddresses::Never);
        let pending = |d: &ProducerDictionary| d.def_bytes(&d.acked(), &d.lens()) as usize;
        let mut acks = Vec::new();
        for i in 0..300u32 {
            dict.string(&format!("text-{i}")).unwrap();
            dict.outcome(200 + (i % 7) as u16, v1::ResponseSource::Upstream)
                .unwrap();
            if i % 40 == 0 {
                acks.push(dict.lens());
            }
            assert_eq!(dict.pending_def_bytes(), pending(&dict));
        }
        for lens in acks.iter().rev().chain(&acks) {
            dict.raise_acked(lens);
            assert_eq!(dict.pending_def_bytes(), pending(&dict));
        }
        assert!(dict.pending_def_bytes() > 0);
        dict.lower_acked_to_zero();
        assert_eq!(dict.pending_def_bytes(), pending(&dict));
        dict.raise_acked(&dict.lens());
        assert_eq!(dict.pending_def_bytes(), 0);
        dict.next_generation();
        assert_eq!(dict.pending_def_bytes(), 0);
        dict.string("after").unwrap();
        assert_eq!(dict.pending_def_bytes(), pending(&dict));
        assert!(dict.pending_def_bytes() > 0);
    }
}
