//! The producer's side of one session-dictionary table: interning values to
//! dense ids, remembering how many the collector has acknowledged, and the
//! exact encoded size of every definition so a batch knows its size. Also
//! [`Texts`], where the string table keeps its texts end to end.

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use prost::Message;
use prost::encoding::{encoded_len_varint, key_len};

/// A value that can be stored in a table and defined on the wire.
pub(crate) trait Entry {
    /// The generated message the entry is defined as.
    type Msg: Message;

    fn to_msg(&self, texts: &Texts) -> Self::Msg;

    /// Encoded length of the entry's message.
    fn msg_len(&self, texts: &Texts) -> usize {
        self.to_msg(texts).encoded_len()
    }

    /// Writes the entry's message, its length first.
    fn encode_msg(&self, texts: &Texts, buf: &mut Vec<u8>) {
        let msg = self.to_msg(texts);
        prost::encoding::encode_varint(msg.encoded_len() as u64, buf);
        msg.encode_raw(buf);
    }

    /// The hash the entry was found and inserted with, for when the index
    /// grows: worked out again from the entry, or kept in it where it
    /// cannot be.
    fn hash(&self, state: &FixedState, texts: &Texts) -> u64;

    /// Bytes the entry holds on the heap, beside its own size.
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// One table: entry `i` of `entries` has id `i + 1`; id 0 is the implicit
/// empty entry.
pub(crate) struct Table<T> {
    entries: Vec<T>,
    state: FixedState,
    index: HashTable<u32>,
    /// `def_end[i]`: encoded bytes of the definitions of ids 1..=i+1, each as
    /// a length-delimited field of `field`. Four bytes are enough: the
    /// dictionary's memory cap is far below 4 GiB.
    def_end: Vec<u32>,
    /// Ids 1..=acked are known to the collector.
    acked: u32,
    /// The `Dictionary` field number of this table's list.
    field: u32,
    /// Sum of the entries' [`Entry::heap_bytes`].
    heap: u64,
}

impl<T: Entry> Table<T> {
    pub(crate) fn new(field: u32, state: FixedState) -> Self {
        Table {
            entries: Vec::new(),
            state,
            index: HashTable::new(),
            def_end: Vec::new(),
            acked: 0,
            field,
            heap: 0,
        }
    }

    /// What the table holds in memory: its vectors and index as allocated,
    /// and what its entries hold beside.
    pub(crate) fn memory_bytes(&self) -> u64 {
        let bytes = |capacity: usize, size: usize| capacity.saturating_mul(size) as u64;
        // hashbrown keeps one control byte per bucket, and at most 7 of 8
        // buckets full.
        let buckets = self.index.capacity().saturating_mul(8) / 7;
        [
            bytes(self.entries.capacity(), size_of::<T>()),
            bytes(self.def_end.capacity(), size_of::<u32>()),
            bytes(buckets, size_of::<u32>().saturating_add(1)),
            self.heap,
        ]
        .into_iter()
        .fold(0, u64::saturating_add)
    }

    /// The id of the entry with this hash for which `eq` holds.
    pub(crate) fn find(&self, hash: u64, eq: impl Fn(&T) -> bool) -> Option<u32> {
        let entries = &self.entries;
        self.index
            .find(hash, |&id| lookup(entries, id).is_some_and(&eq))
            .copied()
    }

    /// Adds an entry that [`Table::find`] did not find, returning its id;
    /// `None` only if the table has 2^32 - 1 entries.
    pub(crate) fn insert(&mut self, hash: u64, entry: T, texts: &Texts) -> Option<u32> {
        let id = u32::try_from(self.entries.len()).ok()?.checked_add(1)?;
        let len = entry.msg_len(texts);
        let def_len = key_len(self.field)
            .saturating_add(encoded_len_varint(len as u64))
            .saturating_add(len);
        let total = u32::try_from(self.def_bytes_to(self.len()))
            .unwrap_or(u32::MAX)
            .saturating_add(u32::try_from(def_len).unwrap_or(u32::MAX));
        self.heap = self.heap.saturating_add(entry.heap_bytes() as u64);
        self.entries.push(entry);
        self.def_end.push(total);
        let (entries, state) = (&self.entries, &self.state);
        self.index.insert_unique(hash, id, |&id| {
            lookup(entries, id).map_or(0, |e| e.hash(state, texts))
        });
        Some(id)
    }

    /// The entry with `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        lookup(&self.entries, id)
    }
    /// Number of entries, not counting id 0.
    pub(crate) fn len(&self) -> u32 {
        // Ids are u32 by construction in `intern`.
        u32::try_from(self.entries.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn acked(&self) -> u32 {
        self.acked
    }

    pub(crate) fn set_acked(&mut self, acked: u32) {
        self.acked = acked.min(self.len());
    }

    /// Encoded bytes of the definitions of ids 1..=n.
    pub(crate) fn def_bytes_to(&self, n: u32) -> u64 {
        match n.checked_sub(1) {
            Some(last) => self.def_end.get(last as usize).map_or(0, |&b| u64::from(b)),
            None => 0,
        }
    }

    /// Entries with ids `from..=to`.
    pub(crate) fn range(&self, from: u32, to: u32) -> &[T] {
        let start = from.saturating_sub(1) as usize;
        self.entries.get(start..to as usize).unwrap_or(&[])
    }

    /// Empties the table and gives its memory back: a table emptied at the
    /// cap would otherwise keep the cap's worth of capacity.
    pub(crate) fn clear(&mut self) {
        *self = Table::new(self.field, self.state.clone());
    }
}

fn lookup<T>(entries: &[T], id: u32) -> Option<&T> {
    entries.get(id.checked_sub(1)? as usize)
}

/// Texts end to end in one buffer, each known by its [`Span`]: a string
/// entry costs 8 bytes and its text, not a pointer, a length and an
/// allocation of its own.
#[derive(Default)]
pub(crate) struct Texts(String);

/// Where a text lies in [`Texts`].
#[derive(Clone, Copy)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

impl Texts {
    /// Appends `s`; `None` past 4 GiB of text.
    pub(crate) fn push(&mut self, s: &str) -> Option<Span> {
        let start = u32::try_from(self.0.len()).ok()?;
        let len = u32::try_from(s.len()).ok()?;
        start.checked_add(len)?;
        self.0.push_str(s);
        Some(Span { start, len })
    }

    /// The text at `span`; empty for a span this buffer never gave.
    pub(crate) fn get(&self, span: Span) -> &str {
        let start = span.start as usize;
        self.0
            .get(start..start.saturating_add(span.len as usize))
            .unwrap_or("")
    }

    /// Bytes allocated.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.0.capacity() as u64
    }

    /// Empties the buffer and gives its memory back.
    pub(crate) fn clear(&mut self) {
        self.0 = String::new();
    }
}
