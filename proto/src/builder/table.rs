//! The producer's side of one session-dictionary table: interning values to
//! dense ids, remembering how many the collector has acknowledged, and the
//! exact encoded size of every definition so a batch knows its size. Also
//! [`Texts`], where the string table keeps its texts end to end.

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use prost::Message;
use prost::encoding::{WireType, encode_key, encoded_len_varint, key_len};

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
    /// Definitions kept for the next batches ([`Table::write_defs`]).
    kept: Kept,
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
            kept: Kept::default(),
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
            bytes(self.kept.bytes.capacity(), 1),
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
        def_bytes_to(&self.def_end, n)
    }

    /// Writes the definitions of ids `from..=to` (each its field key,
    /// length and message) as [`Entry::encode_msg`] would. While the
    /// collector acknowledges each batch before the next is cut, they are
    /// encoded straight into the batch. Once a batch carries definitions an
    /// earlier one carried (the collector is behind or away), they are
    /// encoded into the kept bytes and copied from there, each encoded once
    /// however many batches carry it. What lies before `from`
    /// (acknowledged since) is let go, also when the range is empty.
    pub(crate) fn write_defs(&mut self, texts: &Texts, from: u32, to: u32, buf: &mut Vec<u8>) {
        let plan = self.kept.plan(&self.def_end, from, to);
        if let Some((first, last)) = plan.to_keep {
            encode_entries(
                &self.entries,
                self.field,
                texts,
                first,
                last,
                &mut self.kept.bytes,
            );
        }
        if !self.kept.copy(&self.def_end, from, plan.copy_to, buf) {
            // Not reached: the sizes are the encodings'. Written afresh.
            #[cfg(test)]
            {
                self.kept.afresh = self.kept.afresh.saturating_add(1);
            }
            encode_entries(&self.entries, self.field, texts, from, plan.copy_to, buf);
        }
        if let Some((first, last)) = plan.direct {
            encode_entries(&self.entries, self.field, texts, first, last, buf);
        }
    }

    /// Writes the definitions of ids `from..=to`, each encoded afresh.
    pub(crate) fn encode_defs(&self, texts: &Texts, from: u32, to: u32, buf: &mut Vec<u8>) {
        encode_entries(&self.entries, self.field, texts, from, to, buf);
    }

    /// Bytes of definitions kept by [`Table::write_defs`].
    #[cfg(test)]
    pub(crate) fn kept_bytes(&self) -> usize {
        self.kept.bytes.len()
    }

    /// Times [`Table::write_defs`] found its kept bytes short.
    #[cfg(test)]
    pub(crate) fn kept_afresh(&self) -> u32 {
        self.kept.afresh
    }

    /// Empties the table and gives its memory back: a table emptied at the
    /// cap would otherwise keep the cap's worth of capacity.
    pub(crate) fn clear(&mut self) {
        *self = Table::new(self.field, self.state.clone());
    }
}

/// Encoded bytes of the definitions of ids 1..=n, from the table's ends.
fn def_bytes_to(def_end: &[u32], n: u32) -> u64 {
    match n.checked_sub(1) {
        Some(last) => def_end.get(last as usize).map_or(0, |&b| u64::from(b)),
        None => 0,
    }
}

/// Writes the definitions of ids `from..=to`; one copy for each kind of
/// entry, whichever buffer it writes to.
#[inline(never)]
fn encode_entries<T: Entry>(
    entries: &[T],
    field: u32,
    texts: &Texts,
    from: u32,
    to: u32,
    buf: &mut Vec<u8>,
) {
    let start = from.saturating_sub(1) as usize;
    for entry in entries.get(start..to as usize).unwrap_or(&[]) {
        encode_key(field, WireType::LengthDelimited, buf);
        entry.encode_msg(texts, buf);
    }
}

/// The definitions of ids `ids.0..=ids.1` as a batch carries them, kept
/// while the collector has not acknowledged them: with the collector away
/// every batch defines all of them again, and encoding them anew for each
/// was most of what a cut cost. Not generic, so one copy serves every
/// table.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    ids: (u32, u32),
    /// The highest id a batch has defined.
    sent_to: u32,
    /// Times the kept bytes lacked what they should hold.
    #[cfg(test)]
    afresh: u32,
}

/// What [`Table::write_defs`] encodes where.
struct Plan {
    /// Ids to encode into the kept bytes first.
    to_keep: Option<(u32, u32)>,
    /// The kept ids `from..=copy_to` are copied into the batch.
    copy_to: u32,
    /// Ids never written before, encoded straight into the batch.
    direct: Option<(u32, u32)>,
}

impl Kept {
    /// Lets go of what lies before `from`, and says how to write
    /// `from..=to`.
    fn plan(&mut self, def_end: &[u32], from: u32, to: u32) -> Plan {
        let (kept_from, kept_to) = self.ids;
        if self.ids.1 < self.ids.0 {
            self.ids = (from, from.saturating_sub(1));
        } else if from != kept_from {
            let dropped = if from > kept_from && from <= kept_to.saturating_add(1) {
                def_bytes_to(def_end, from.saturating_sub(1))
                    .saturating_sub(def_bytes_to(def_end, kept_from.saturating_sub(1)))
            } else {
                u64::MAX
            };
            match usize::try_from(dropped) {
                Ok(n) if n < self.bytes.len() => {
                    self.bytes.drain(..n);
                }
                _ => {
                    // Given back: the dictionary's memory counts it, and
                    // an outage's worth held after it could start a
                    // generation the collector did not need.
                    self.bytes = Vec::new();
                    self.ids.1 = from.saturating_sub(1);
                }
            }
            self.ids.0 = from;
        }
        let none = Plan {
            to_keep: None,
            copy_to: from.saturating_sub(1),
            direct: None,
        };
        if to < from {
            return none;
        }
        let sent_before = self.sent_to;
        self.sent_to = self.sent_to.max(to);
        if sent_before < from {
            // None of these went before: the collector has acknowledged
            // every batch so far, and likely will this one.
            return Plan {
                direct: Some((from, to)),
                ..none
            };
        }
        // The collector is behind, so what goes now will likely go again:
        // into the kept bytes, which take in what they lack, and copied.
        let next = self.ids.1.saturating_add(1);
        self.ids.1 = self.ids.1.max(to);
        Plan {
            to_keep: (to >= next).then_some((next, to)),
            copy_to: to,
            direct: None,
        }
    }

    /// Copies the kept definitions of ids `from..=to` into `buf`; false if
    /// it does not hold them.
    fn copy(&self, def_end: &[u32], from: u32, to: u32, buf: &mut Vec<u8>) -> bool {
        if to < from {
            return true;
        }
        let len =
            def_bytes_to(def_end, to).saturating_sub(def_bytes_to(def_end, from.saturating_sub(1)));
        match usize::try_from(len).ok().and_then(|n| self.bytes.get(..n)) {
            Some(kept) => {
                buf.extend_from_slice(kept);
                true
            }
            None => false,
        }
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
