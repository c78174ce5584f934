//! The producer's side of one session-dictionary table: interning values to
//! dense ids, remembering how many the collector has acknowledged, and the
//! exact encoded size of every definition so a batch knows its size.

use hashbrown::HashTable;
use prost::Message;
use prost::encoding::{encoded_len_varint, key_len};

/// A value that can be stored in a table and defined on the wire.
pub(crate) trait Entry {
    /// The generated message the entry is defined as.
    type Msg: Message;

    fn to_msg(&self) -> Self::Msg;
}

/// One table: entry `i` of `entries` has id `i + 1`; id 0 is the implicit
/// empty entry.
pub(crate) struct Table<T> {
    entries: Vec<T>,
    /// The hash each entry was inserted with, so the index can grow without
    /// knowing how an entry is hashed (endpoints hash their strings, which
    /// live in another table).
    hashes: Vec<u64>,
    index: HashTable<u32>,
    /// `def_end[i]`: encoded bytes of the definitions of ids 1..=i+1, each as
    /// a length-delimited field of `field`.
    def_end: Vec<u64>,
    /// Ids 1..=acked are known to the collector.
    acked: u32,
    /// The `Dictionary` field number of this table's list.
    field: u32,
}

impl<T: Entry> Table<T> {
    pub(crate) fn new(field: u32) -> Self {
        Table {
            entries: Vec::new(),
            hashes: Vec::new(),
            index: HashTable::new(),
            def_end: Vec::new(),
            acked: 0,
            field,
        }
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
    pub(crate) fn insert(&mut self, hash: u64, entry: T) -> Option<u32> {
        let id = u32::try_from(self.entries.len()).ok()?.checked_add(1)?;
        let len = entry.to_msg().encoded_len();
        let def_len = key_len(self.field)
            .saturating_add(encoded_len_varint(len as u64))
            .saturating_add(len);
        let total = self.def_bytes_to(self.len()).saturating_add(def_len as u64);
        self.entries.push(entry);
        self.hashes.push(hash);
        self.def_end.push(total);
        let hashes = &self.hashes;
        self.index
            .insert_unique(hash, id, |&id| lookup(hashes, id).copied().unwrap_or(0));
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
            Some(last) => self.def_end.get(last as usize).copied().unwrap_or(0),
            None => 0,
        }
    }

    /// Entries with ids `from..=to`.
    pub(crate) fn range(&self, from: u32, to: u32) -> &[T] {
        let start = from.saturating_sub(1) as usize;
        self.entries.get(start..to as usize).unwrap_or(&[])
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.hashes.clear();
        self.index.clear();
        self.def_end.clear();
        self.acked = 0;
    }
}

fn lookup<T>(entries: &[T], id: u32) -> Option<&T> {
    entries.get(id.checked_sub(1)? as usize)
}
