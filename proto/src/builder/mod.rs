//! [`BatchBuilder`]: the producer side of the codec, used by the filter.
//!
//! The builder owns the worker's session dictionary and the open batch. Each
//! [`BatchBuilder::append`] interns the record's repeated values (a hash
//! lookup that copies nothing when the value is known) and appends one varint
//! per column to reusable buffers, so steady-state appends do not allocate.
//! [`BatchBuilder::encoded_len`] is exact at every point, which lets the
//! filter cut a batch at a byte budget; [`BatchBuilder::payload_len`] and
//! [`FRAMING_MAX`] let it bound the size between exact sizings for less.
//!
//! A sealed batch defines the dictionary entries the collector has not
//! acknowledged yet; [`BatchBuilder::acknowledge`] records that a batch was
//! committed, and [`BatchBuilder::reset_acknowledgements`] forgets it all when
//! the collector says it lost the dictionary.

mod admission;
mod ai;
mod dictionary;
mod memo;
mod rewrite;
mod table;

use std::borrow::Cow;
use std::net::IpAddr;

use dictionary::{Client, ProducerDictionary};

use foldhash::fast::FixedState;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::coding::parse_hex_id;
use crate::coding::{MAX_DURATION_US, MAX_SIZE_BYTES, encode_duration, encode_upstream, zigzag};
use crate::limits::{
    MAX_ABANDONED, MAX_GROUPS, MAX_ID_BYTES, MAX_NODE_ID_BYTES, MAX_RECORD_SPREAD_MS, MAX_RECORDS,
    MAX_SAMPLE_WEIGHT, MAX_TIME_MS, MAX_VERSION_BYTES,
};
use crate::record::Record;
use crate::v1;
use crate::{AI_REVISION, BASE_REVISION, INLINE_REVISION, TableLens};

/// Builder settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuilderOptions {
    /// Memory of the dictionary, in bytes, past which the builder starts a
    /// new generation after the next batch: its tables as allocated, with
    /// their texts and lookup keys.
    pub max_dictionary_bytes: u64,
    /// Bytes of definitions the collector has not acknowledged, past which
    /// the builder starts a new generation after the next batch. Every
    /// batch carries them all, so while the collector is away they would
    /// otherwise grow with the dictionary until no batch fits the buffer.
    pub max_pending_definitions: u64,
    /// Seed for the dictionary's hash tables. Draw it at random per instance
    /// so that clients cannot aim for hash collisions.
    pub hash_seed: u64,
    /// When a client address not in the dictionary travels as raw bytes in
    /// its record (`Records.client_inline`, revision 3) rather than being
    /// defined.
    pub inline_addresses: InlineAddresses,
}

/// When client addresses travel inline; see the `admission` module.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InlineAddresses {
    /// Never: every batch stays readable by a revision-2 collector.
    Never,
    /// When the traffic shows that most new addresses are not met again
    /// soon, as at high cardinality; until then, addresses are defined.
    #[default]
    Measured,
    /// Every address until it is met again, from the first record: for
    /// traffic known to be of high cardinality, and for tests.
    Always,
}

impl Default for BuilderOptions {
    fn default() -> Self {
        BuilderOptions {
            max_dictionary_bytes: 16 * 1024 * 1024,
            max_pending_definitions: 1024 * 1024,
            hash_seed: 0,
            inline_addresses: InlineAddresses::Measured,
        }
    }
}

/// Who produces the batches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Producer {
    /// Random per Wasm instance.
    pub instance_id: [u8; 16],
    /// `kong.node.id`; known only once a request has been seen.
    pub node_id: String,
    /// The filter's version.
    pub filter_version: String,
    /// `kong.version`; known only once a request has been seen.
    pub kong_version: String,
}

/// Why a record was not appended. The open batch is unchanged; the filter
/// counts the record as a capture error (or seals the batch and retries, for
/// [`AppendError::BatchFull`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The batch holds [`MAX_RECORDS`] records; seal it first.
    #[error("the batch already holds {MAX_RECORDS} records")]
    BatchFull,
    /// The record's time is outside 1970..2200 or more than a day away from
    /// the batch's first record.
    #[error("record time {started_at_ms} ms is out of range for this batch")]
    TimeOutOfRange {
        /// The record's start time.
        started_at_ms: i64,
    },
    /// A dictionary table ran out of ids (2^32 - 1 entries).
    #[error("a dictionary table is out of ids")]
    DictionaryFull,
    /// The record gave its caller by key alone ([`Memo::identity_by_key`]),
    /// and the builder does not know the key (a new dictionary generation
    /// forgot it): nothing was added; send the record with its caller.
    ///
    /// [`Memo::identity_by_key`]: crate::Memo::identity_by_key
    #[error("the record's caller was given by a key the builder does not know")]
    IdentityUnknown,
}

/// What the producer needs to remember of a sealed batch to acknowledge it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchAck {
    /// The dictionary generation of the batch.
    pub generation: u32,
    /// The table lengths when it was sealed: everything below is defined by
    /// it or by batches acknowledged before.
    pub lens: TableLens,
}

/// A batch ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBatch {
    /// The batch's sequence number.
    pub sequence: u64,
    /// Records in it.
    pub record_count: u32,
    /// Its schema revision: [`INLINE_REVISION`] when it has addresses
    /// inline, which a collector older than them refuses.
    pub revision: u32,
    /// Acknowledge with this once the collector committed it.
    pub ack: BatchAck,
    /// Where the `dictionary` field starts in `bytes`; it is always last.
    pub dictionary_offset: usize,
    /// The encoded `Batch`.
    pub bytes: Vec<u8>,
}

/// Most bytes of keys, length prefixes and small fields that a batch's
/// [`BatchBuilder::encoded_len`] holds beyond [`BatchBuilder::payload_len`]
/// and the header fields that stay the same while a batch is open (its
/// revision is one byte; producer, sequence number and drops are the
/// caller's). Lengths below 2^35 take at most five bytes.
pub const FRAMING_MAX: usize = {
    // A key and a length.
    const PREFIX: usize = 1 + 5;
    // A key and a ten-byte varint.
    const VARINT: usize = 1 + 10;
    let cut_time = VARINT;
    // The section, the count, the base time, the ten packed columns, the
    // weights, the AI section with its twenty columns, the inline addresses.
    let records = PREFIX + PREFIX + VARINT + 10 * PREFIX + PREFIX + PREFIX * 21 + PREFIX;
    // The section, the generation, the first id of each of the five tables.
    let dictionary = PREFIX + VARINT + 5 * PREFIX;
    cut_time + records + dictionary
};

/// Builds batches for one producer. See the module docs.
pub struct BatchBuilder {
    dict: ProducerDictionary,
    options: BuilderOptions,
    producer: Vec<u8>,
    next_sequence: u64,
    cols: Columns,
    scratch_groups: Vec<u32>,
    /// Counts the calls other than appends that may change the batch's
    /// size: sizes bounded by [`BatchBuilder::payload_len`] hold within one.
    epoch: u64,
}

impl BatchBuilder {
    /// A builder whose first batch has sequence 1 and dictionary generation 0.
    pub fn new(producer: &Producer, options: BuilderOptions) -> Self {
        BatchBuilder {
            dict: ProducerDictionary::new(
                FixedState::with_seed(options.hash_seed),
                options.inline_addresses,
            ),
            options,
            producer: encode_producer(producer),
            next_sequence: 1,
            cols: Columns::default(),
            scratch_groups: Vec::with_capacity(MAX_GROUPS),
            epoch: 0,
        }
    }

    /// Updates the producer fields, e.g. once the node id is known.
    pub fn set_producer(&mut self, producer: &Producer) {
        self.producer = encode_producer(producer);
        self.next_epoch();
    }

    /// Changes whenever something other than [`BatchBuilder::append`] may
    /// have changed the open batch's size: sealing, acknowledgements, a new
    /// producer, rewriting a batch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    fn next_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// The open batch's contents, less the keys and length prefixes that
    /// frame its sections and columns: the records' column bytes and the
    /// unacknowledged definitions. Between two points of one
    /// [`BatchBuilder::epoch`], called with the same drops,
    /// [`BatchBuilder::encoded_len`] grows by at most what this grew by
    /// plus [`FRAMING_MAX`]; and this is a few sums, where the exact size
    /// works out every prefix, on every record.
    pub fn payload_len(&self) -> usize {
        self.cols
            .payload_len()
            .saturating_add(self.dict.pending_def_bytes())
    }

    /// Records in the open batch.
    pub fn len(&self) -> u32 {
        self.cols.count
    }

    /// True when the open batch has no records.
    pub fn is_empty(&self) -> bool {
        self.cols.count == 0
    }

    /// The sequence number the next sealed batch gets.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The current dictionary generation.
    pub fn generation(&self) -> u32 {
        self.dict.generation
    }

    /// Encoded size of the dictionary's current generation, in bytes.
    pub fn dictionary_bytes(&self) -> u64 {
        self.dict.total_bytes()
    }

    /// Whether a record may give its caller by `key` alone
    /// ([`Memo::identity_by_key`]): the builder remembers which caller, or
    /// that there is none, since a record with that key said so in this
    /// dictionary generation.
    ///
    /// [`Memo::identity_by_key`]: crate::Memo::identity_by_key
    pub fn knows_identity(&self, key: u64) -> bool {
        self.dict.identity_by_key(key).is_some()
    }

    /// Whether the builder remembers the endpoint that the producer's key
    /// `key` stands for ([`Memo::endpoint`]) in this dictionary
    /// generation, so that a record with that key is appended without its
    /// route, host and path being looked at.
    ///
    /// [`Memo::endpoint`]: crate::Memo::endpoint
    pub fn knows_endpoint(&self, key: u64) -> bool {
        self.dict.knows_endpoint(key)
    }

    /// The builder's hash of the client address `text` when it remembers
    /// an id for it, to be given back in [`Memo::client`]. A producer that
    /// checks each address before it records one may ask this first, and
    /// skip the check for a text it recorded before.
    ///
    /// [`Memo::client`]: crate::Memo::client
    pub fn knows_client(&self, text: &[u8]) -> Option<u64> {
        self.dict.knows_client(text)
    }

    /// Appends one record to the open batch.
    pub fn append(&mut self, r: &Record<'_>) -> Result<(), AppendError> {
        if self.cols.count >= MAX_RECORDS {
            return Err(AppendError::BatchFull);
        }
        let total_us = r.latency_total_us.min(MAX_DURATION_US);
        let time_error = AppendError::TimeOutOfRange {
            started_at_ms: r.started_at_ms,
        };
        // Whole milliseconds of u64 microseconds always fit an i64.
        let end_ms = r
            .started_at_ms
            .checked_add((total_us / 1000) as i64)
            .filter(|t| (0..=MAX_TIME_MS).contains(&r.started_at_ms) && *t <= MAX_TIME_MS)
            .ok_or(time_error)?;
        let (base, delta) = if self.cols.count == 0 {
            (end_ms, 0)
        } else {
            let spread = end_ms
                .checked_sub(self.cols.base_time_ms)
                .ok_or(time_error)?;
            if spread.unsigned_abs() > MAX_RECORD_SPREAD_MS as u64 {
                return Err(time_error);
            }
            let delta = end_ms
                .checked_sub(self.cols.last_end_ms)
                .ok_or(time_error)?;
            (self.cols.base_time_ms, delta)
        };

        // Intern first: a failure here must leave the columns untouched.
        let endpoint = self.dict.endpoint(r)?;
        let outcome = self.dict.outcome(r.status, r.source)?;
        let identity = match &r.identity {
            Some(id) => self
                .dict
                .identity(id, r.memo.identity, &mut self.scratch_groups)?,
            None if r.memo.identity_by_key => self
                .dict
                .identity_by_key(r.memo.identity)
                .ok_or(AppendError::IdentityUnknown)?,
            None => {
                self.dict.no_identity(r.memo.identity);
                0
            }
        };
        let client = self.dict.client(r.client_address, r.memo.client)?;
        let agent = match &r.agent {
            Some(agent) => self.dict.agent(agent, r.memo.agent)?,
            None => 0,
        };
        let ai_names = match r.ai {
            Some(ai) => Some(ai::AiNames {
                provider: self.dict.string(ai.provider)?,
                request_model: self.dict.string(ai.request_model)?,
                response_model: self.dict.string(ai.response_model)?,
                request_mode: self.dict.string(ai.request_mode)?,
                cache_status: self.dict.string(ai.cache_status)?,
                embeddings_model: self.dict.string(ai.embeddings_model)?,
                guardrail: self.dict.string(ai.guardrail)?,
                mcp_tool: self.dict.string(ai.mcp_tool)?,
            }),
            None => None,
        };

        let c = &mut self.cols;
        c.base_time_ms = base;
        c.last_end_ms = end_ms;
        let index = c.count as usize;
        put_varint(zigzag(delta), &mut c.end_delta);
        put_varint(u64::from(endpoint), &mut c.endpoint);
        put_varint(u64::from(outcome), &mut c.outcome);
        put_varint(encode_duration(total_us), &mut c.latency_total);
        put_varint(
            encode_upstream(total_us, r.latency_upstream_us),
            &mut c.latency_upstream,
        );
        put_varint(r.request_bytes.min(MAX_SIZE_BYTES), &mut c.request_bytes);
        put_varint(r.response_bytes.min(MAX_SIZE_BYTES), &mut c.response_bytes);
        put_varint(u64::from(identity), &mut c.identity);
        c.push_client(client);
        put_varint(u64::from(agent), &mut c.agent);
        push_id(&mut c.request_id, 13, index, r.request_id);
        push_id(&mut c.trace_id, 14, index, r.trace_id);
        push_weight(&mut c.sample_weight, index, r.sample_weight);
        if let (Some(ai), Some(names)) = (r.ai, ai_names) {
            c.ai.push(c.count, ai, &names);
        }
        c.count = c.count.saturating_add(1);
        Ok(())
    }

    /// Exact size in bytes of the batch [`BatchBuilder::seal`] would produce
    /// now with these arguments.
    pub fn encoded_len(&self, cut_time_ms: i64, drops: &v1::Drops) -> usize {
        let header = self.header_len(cut_time_ms, drops);
        let records = self.cols.body_len();
        let records = if self.cols.count > 0 {
            delimited_len(6, records)
        } else {
            0
        };
        let dictionary = delimited_len(7, self.dict.body_len());
        header.saturating_add(records).saturating_add(dictionary)
    }

    /// Seals the open batch, clears it for the next one, and returns the
    /// bytes to send. `drops` are the counts since the previous batch and
    /// the sequence numbers abandoned since then (the first
    /// [`MAX_ABANDONED`] of them).
    pub fn seal(&mut self, cut_time_ms: i64, drops: &v1::Drops) -> SealedBatch {
        let drops = &*capped(drops);
        let mut buf = Vec::with_capacity(self.encoded_len(cut_time_ms, drops));
        let sequence = self.next_sequence;
        self.next_sequence = sequence.saturating_add(1);

        encode_key(1, WireType::Varint, &mut buf);
        encode_varint(u64::from(self.cols.revision()), &mut buf);
        encode_key(2, WireType::LengthDelimited, &mut buf);
        encode_varint(self.producer.len() as u64, &mut buf);
        buf.extend_from_slice(&self.producer);
        encode_key(3, WireType::Varint, &mut buf);
        encode_varint(sequence, &mut buf);
        if cut_time_ms != 0 {
            encode_key(4, WireType::Varint, &mut buf);
            encode_varint(cut_time_ms as u64, &mut buf);
        }
        if *drops != v1::Drops::default() {
            encode_key(5, WireType::LengthDelimited, &mut buf);
            encode_varint(drops.encoded_len() as u64, &mut buf);
            drops.encode_raw(&mut buf);
        }
        if self.cols.count > 0 {
            encode_key(6, WireType::LengthDelimited, &mut buf);
            encode_varint(self.cols.body_len() as u64, &mut buf);
            self.cols.encode_body(&mut buf);
        }
        let dictionary_offset = buf.len();
        let acked = self.dict.acked();
        self.dict.encode(&acked, &mut buf);

        let sealed = SealedBatch {
            sequence,
            record_count: self.cols.count,
            revision: self.cols.revision(),
            ack: BatchAck {
                generation: self.dict.generation,
                lens: self.dict.lens(),
            },
            dictionary_offset,
            bytes: buf,
        };
        self.cols.clear();
        if self.dict.memory_bytes() > self.options.max_dictionary_bytes
            || self.dict.body_len() as u64 > self.options.max_pending_definitions
        {
            self.dict.next_generation();
        }
        self.next_epoch();
        sealed
    }

    /// Notes that the collector committed a batch: later batches need not
    /// define what it defined.
    pub fn acknowledge(&mut self, ack: BatchAck) {
        if ack.generation == self.dict.generation {
            self.dict.raise_acked(&ack.lens);
        }
        self.next_epoch();
    }

    /// Forgets every acknowledgement, so the next batch defines the whole
    /// dictionary; for a collector that lost its copy.
    pub fn reset_acknowledgements(&mut self) {
        self.dict.lower_acked_to_zero();
        self.next_epoch();
    }

    /// Rewrites a sealed batch so that it defines every entry it refers to,
    /// for a collector that lost the dictionary. Returns false, leaving the
    /// batch unchanged, when the batch belongs to a generation this builder
    /// no longer holds.
    pub fn redefine_all(&self, batch: &mut SealedBatch) -> bool {
        if batch.ack.generation != self.dict.generation {
            return false;
        }
        let Some(prefix) = batch.bytes.get(..batch.dictionary_offset) else {
            return false;
        };
        let mut bytes = prefix.to_vec();
        self.dict.encode_range(&[0; 5], &batch.ack.lens, &mut bytes);
        batch.bytes = bytes;
        true
    }

    /// Sends every client address as a dictionary string from now on, for
    /// a collector that refuses revision 3 (`unsupported_revision`).
    pub fn stop_inlining(&mut self) {
        self.dict.stop_inlining();
        self.next_epoch();
    }

    /// Rewrites a sealed batch with addresses inline into one without
    /// (revision 1 or 2): its addresses become dictionary strings, and it
    /// defines everything the collector has not acknowledged. Returns
    /// false, leaving the batch unchanged, when the batch belongs to a
    /// generation this builder no longer holds, is not one it wrote, or the
    /// dictionary is out of ids.
    pub fn deinline(&mut self, batch: &mut SealedBatch) -> bool {
        if batch.revision != INLINE_REVISION {
            return true;
        }
        if batch.ack.generation != self.dict.generation {
            return false;
        }
        let Some(prefix) = batch.bytes.get(..batch.dictionary_offset) else {
            return false;
        };
        self.next_epoch();
        let dict = &mut self.dict;
        let Some((mut bytes, revision)) =
            rewrite::without_inline(prefix, |text| dict.string(text).ok())
        else {
            return false;
        };
        let dictionary_offset = bytes.len();
        let acked = self.dict.acked();
        self.dict.encode(&acked, &mut bytes);
        batch.bytes = bytes;
        batch.dictionary_offset = dictionary_offset;
        batch.revision = revision;
        batch.ack.lens = self.dict.lens();
        true
    }

    fn header_len(&self, cut_time_ms: i64, drops: &v1::Drops) -> usize {
        let drops = &*capped(drops);
        let mut len = Size::default();
        len.varint(1, u64::from(self.cols.revision()));
        len.delimited(2, self.producer.len());
        len.varint(3, self.next_sequence);
        if cut_time_ms != 0 {
            len.varint(4, cut_time_ms as u64);
        }
        if *drops != v1::Drops::default() {
            len.delimited(5, drops.encoded_len());
        }
        len.0
    }
}

/// `drops` as a batch carries them: at most [`MAX_ABANDONED`] abandoned
/// sequence numbers, the first ones. Borrowed unless it had to cut.
fn capped(drops: &v1::Drops) -> Cow<'_, v1::Drops> {
    match drops.abandoned.get(..MAX_ABANDONED) {
        Some(kept) if kept.len() < drops.abandoned.len() => Cow::Owned(v1::Drops {
            abandoned: kept.to_vec(),
            ..*drops
        }),
        _ => Cow::Borrowed(drops),
    }
}

fn encode_producer(p: &Producer) -> Vec<u8> {
    v1::Producer {
        instance_id: p.instance_id.to_vec(),
        node_id: truncate(&p.node_id, MAX_NODE_ID_BYTES).to_owned(),
        filter_version: truncate(&p.filter_version, MAX_VERSION_BYTES).to_owned(),
        kong_version: truncate(&p.kong_version, MAX_VERSION_BYTES).to_owned(),
    }
    .encode_to_vec()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
fn truncate(s: &str, max: usize) -> &str {
    s.get(..s.floor_char_boundary(max)).unwrap_or("")
}

/// Appends a varint; prost's `encode_varint` goes through `BufMut`, which
/// costs more than the value on the append path. Inlined at each of its
/// dozen calls: called, each cost some 38 instructions in Wasm.
#[inline(always)]
fn put_varint(mut value: u64, buf: &mut Vec<u8>) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Bytes of a length-delimited field with a body of `len` bytes.
fn delimited_len(field: u32, len: usize) -> usize {
    let mut size = Size::default();
    size.delimited(field, len);
    size.0
}

/// Bytes of a varint after a one-byte key (fields 1 to 15).
#[inline]
fn keyed_varint_len(value: u64) -> usize {
    // A varint takes at most ten bytes.
    encoded_len_varint(value).wrapping_add(1)
}

/// Adds up encoded sizes; saturating, though real sizes are far below.
#[derive(Default)]
struct Size(usize);

impl Size {
    fn add(&mut self, n: usize) {
        self.0 = self.0.saturating_add(n);
    }

    /// A varint field.
    fn varint(&mut self, field: u32, value: u64) {
        self.add(key_len(field));
        self.add(encoded_len_varint(value));
    }

    /// A length-delimited field with a body of `len` bytes.
    fn delimited(&mut self, field: u32, len: usize) {
        self.add(key_len(field));
        self.add(encoded_len_varint(len as u64));
        self.add(len);
    }
}

/// Appends one `Id` element for record `index`, backfilling empty elements
/// for earlier records the first time a column gets a value. Inlined for
/// the common case, a batch without ids (they are off by default): the call
/// alone cost some 50 instructions in the engine, twice a record.
#[inline(always)]
fn push_id(column: &mut Option<Vec<u8>>, field: u32, index: usize, id: &str) {
    if column.is_some() || !id.is_empty() {
        write_id(column, field, index, id);
    }
}

/// [`push_id`] for a column that has ids or an id to take.
#[inline(never)]
fn write_id(column: &mut Option<Vec<u8>>, field: u32, index: usize, id: &str) {
    if column.is_none() {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return;
        }
        let mut fill = Vec::with_capacity(index.saturating_mul(2));
        for _ in 0..index {
            encode_key(field, WireType::LengthDelimited, &mut fill);
            fill.push(0);
        }
        *column = Some(fill);
    }
    let Some(buf) = column else { return };
    encode_key(field, WireType::LengthDelimited, buf);
    if id.is_empty() || id.len() > MAX_ID_BYTES {
        buf.push(0);
    } else if let Some(bytes) = parse_hex_id(id) {
        encode_varint(18, buf);
        encode_key(1, WireType::LengthDelimited, buf);
        buf.push(16);
        buf.extend_from_slice(&bytes);
    } else {
        encode_varint(delimited_len(2, id.len()) as u64, buf);
        encode_key(2, WireType::LengthDelimited, buf);
        encode_varint(id.len() as u64, buf);
        buf.extend_from_slice(id.as_bytes());
    }
}

/// Appends a sample weight, creating the column (all earlier weights 1) the
/// first time a weight is not 1. Invalid weights count as 1.
fn push_weight(column: &mut Option<Vec<u8>>, index: usize, weight: f32) {
    let weight = if weight.is_finite() && (1.0..=MAX_SAMPLE_WEIGHT).contains(&weight) {
        weight
    } else {
        1.0
    };
    if column.is_none() {
        if weight == 1.0 {
            return;
        }
        let mut fill = Vec::with_capacity(index.saturating_add(1).saturating_mul(4));
        for _ in 0..index {
            fill.extend_from_slice(&1.0f32.to_le_bytes());
        }
        *column = Some(fill);
    }
    if let Some(buf) = column {
        buf.extend_from_slice(&weight.to_le_bytes());
    }
}

/// The open batch, column by column.
#[derive(Default)]
struct Columns {
    count: u32,
    base_time_ms: i64,
    last_end_ms: i64,
    end_delta: Vec<u8>,
    endpoint: Vec<u8>,
    outcome: Vec<u8>,
    latency_total: Vec<u8>,
    latency_upstream: Vec<u8>,
    request_bytes: Vec<u8>,
    response_bytes: Vec<u8>,
    identity: Vec<u8>,
    /// The client column as revision 1 writes it, and as revision 3 does
    /// (ids shifted past the two inline markers): which one a batch sends
    /// is known only at the end, and a batch without inline addresses must
    /// stay byte for byte what an older collector reads.
    client: Vec<u8>,
    client_shifted: Vec<u8>,
    /// Raw bytes of the inline addresses, in record order.
    client_inline: Vec<u8>,
    agent: Vec<u8>,
    /// Whole `Id` elements with their keys, or `None` while no record had one.
    request_id: Option<Vec<u8>>,
    trace_id: Option<Vec<u8>>,
    /// Little-endian f32s, or `None` while every weight is 1.
    sample_weight: Option<Vec<u8>>,
    /// Figures of the records with AI usage.
    ai: ai::AiColumns,
}

impl Columns {
    /// The schema revision the batch needs: AI figures are revision 2,
    /// inline addresses 3.
    fn revision(&self) -> u32 {
        if !self.client_inline.is_empty() {
            INLINE_REVISION
        } else if !self.ai.is_empty() {
            AI_REVISION
        } else {
            BASE_REVISION
        }
    }

    fn push_client(&mut self, client: Client) {
        let (id, shifted) = match client {
            Client::Id(0) => (0, 0),
            Client::Id(id) => (id, u64::from(id) + 2),
            Client::Inline(IpAddr::V4(ip)) => {
                self.client_inline.extend_from_slice(&ip.octets());
                (0, 1)
            }
            Client::Inline(IpAddr::V6(ip)) => {
                self.client_inline.extend_from_slice(&ip.octets());
                (0, 2)
            }
        };
        put_varint(u64::from(id), &mut self.client);
        put_varint(shifted, &mut self.client_shifted);
    }

    /// The packed varint columns with their field numbers.
    fn packed(&self) -> [(u32, &[u8]); 10] {
        [
            (3, &self.end_delta),
            (4, &self.endpoint),
            (5, &self.outcome),
            (6, &self.latency_total),
            (7, &self.latency_upstream),
            (8, &self.request_bytes),
            (9, &self.response_bytes),
            (10, &self.identity),
            (
                11,
                if self.client_inline.is_empty() {
                    &self.client
                } else {
                    &self.client_shifted
                },
            ),
            (12, &self.agent),
        ]
    }

    /// What the packed columns, ids, weights, AI figures and inline
    /// addresses hold, without their keys and prefixes.
    fn payload_len(&self) -> usize {
        let packed = self
            .packed()
            .iter()
            .fold(0usize, |n, (_, column)| n.saturating_add(column.len()));
        [
            self.request_id.as_ref().map_or(0, Vec::len),
            self.trace_id.as_ref().map_or(0, Vec::len),
            self.sample_weight.as_ref().map_or(0, Vec::len),
            self.client_inline.len(),
            self.ai.payload_len(),
        ]
        .into_iter()
        .fold(packed, usize::saturating_add)
    }

    fn body_len(&self) -> usize {
        if self.count == 0 {
            return 0;
        }
        // Runs on every append: fields 1 to 15 have one-byte keys, so the
        // common part skips working out each key's length.
        let mut len = Size(keyed_varint_len(u64::from(self.count)));
        if self.base_time_ms != 0 {
            len.add(keyed_varint_len(self.base_time_ms as u64));
        }
        for (field, column) in self.packed() {
            debug_assert!(key_len(field) == 1);
            len.add(keyed_varint_len(column.len() as u64));
            len.add(column.len());
        }
        len.add(self.request_id.as_ref().map_or(0, Vec::len));
        len.add(self.trace_id.as_ref().map_or(0, Vec::len));
        if let Some(weights) = &self.sample_weight {
            len.delimited(15, weights.len());
        }
        if !self.ai.is_empty() {
            len.delimited(16, self.ai.body_len());
        }
        if !self.client_inline.is_empty() {
            len.delimited(17, self.client_inline.len());
        }
        len.0
    }

    fn encode_body(&self, buf: &mut Vec<u8>) {
        encode_key(1, WireType::Varint, buf);
        encode_varint(u64::from(self.count), buf);
        if self.base_time_ms != 0 {
            encode_key(2, WireType::Varint, buf);
            encode_varint(self.base_time_ms as u64, buf);
        }
        for (field, column) in self.packed() {
            encode_key(field, WireType::LengthDelimited, buf);
            encode_varint(column.len() as u64, buf);
            buf.extend_from_slice(column);
        }
        for ids in [&self.request_id, &self.trace_id].into_iter().flatten() {
            buf.extend_from_slice(ids);
        }
        if let Some(weights) = &self.sample_weight {
            encode_key(15, WireType::LengthDelimited, buf);
            encode_varint(weights.len() as u64, buf);
            buf.extend_from_slice(weights);
        }
        if !self.ai.is_empty() {
            encode_key(16, WireType::LengthDelimited, buf);
            encode_varint(self.ai.body_len() as u64, buf);
            self.ai.encode_body(buf);
        }
        if !self.client_inline.is_empty() {
            encode_key(17, WireType::LengthDelimited, buf);
            encode_varint(self.client_inline.len() as u64, buf);
            buf.extend_from_slice(&self.client_inline);
        }
    }

    /// Empties the batch, keeping the buffers' capacity.
    fn clear(&mut self) {
        self.count = 0;
        self.base_time_ms = 0;
        self.last_end_ms = 0;
        for column in [
            &mut self.end_delta,
            &mut self.endpoint,
            &mut self.outcome,
            &mut self.latency_total,
            &mut self.latency_upstream,
            &mut self.request_bytes,
            &mut self.response_bytes,
            &mut self.identity,
            &mut self.client,
            &mut self.client_shifted,
            &mut self.client_inline,
            &mut self.agent,
        ] {
            column.clear();
        }
        self.request_id = None;
        self.trace_id = None;
        self.sample_weight = None;
        self.ai.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn varints_are_prosts() {
        let mut values: Vec<u64> = (0..=1000).collect();
        for bit in 0..64 {
            let p = 1u64 << bit;
            values.extend([p - 1, p, p + 1, p.wrapping_mul(3)]);
        }
        values.extend([u64::MAX - 1, u64::MAX, (1 << 56) - 1, 1 << 56]);
        // After bytes already in the buffer, which must stay.
        let mut ours = vec![0xee; 3];
        let mut theirs = vec![0xee; 3];
        for v in values {
            put_varint(v, &mut ours);
            encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
        }
    }
}
