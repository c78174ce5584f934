//! The optional on-disk spool (`-spool-dir`): sealed batches that a lane's
//! outbox gave up on for room or age, one file each, kept across a
//! collector outage longer than the memory cap and across a restart of the
//! plugin server, bounded in bytes. Owns the files only: the lane decides
//! when to send them, and the outbox judges the replies.
//!
//! A file is `NNNNNNNNNNNNNNNNNNNN-<instance>-<sequence>-<records>.batch`:
//! the spool's own order, then what is needed to account for the batch if
//! it must be dropped unread. It is written aside, synced and renamed, so
//! a crash leaves either the whole batch or none of it.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use kong_looker_proto::BatchReader;
use kong_looker_proto::v1::Drops;

/// A batch file the spool removed unsent to stay under its bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evicted {
    /// The producer instance that sealed it, 32 hex digits.
    pub instance: String,
    /// Its sequence within that producer.
    pub sequence: u64,
    /// Records it held.
    pub records: u32,
    /// The drops it was carrying to the collector, which must now travel
    /// in another batch (empty when the file could not be read).
    pub carried: Drops,
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    size: u64,
    evicted: Evicted,
}

/// One destination's spool folder.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    files: VecDeque<Entry>,
    bytes: u64,
    next: u64,
}

impl Spool {
    /// Opens `dir` (creating it), taking over the batches an earlier
    /// process left there, oldest first. Files it cannot name are left
    /// alone; half-written ones (`.tmp`) are removed.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if name.ends_with(".tmp") {
                let _gone = fs::remove_file(&path);
                continue;
            }
            let Some((order, evicted)) = parse_name(name) else {
                continue;
            };
            found.push((order, path, entry.metadata()?.len(), evicted));
        }
        found.sort_by_key(|(order, ..)| *order);
        let next = found
            .last()
            .map_or(0, |(order, ..)| order.saturating_add(1));
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            files: VecDeque::new(),
            bytes: 0,
            next,
        };
        for (_, path, size, evicted) in found {
            spool.bytes = spool.bytes.saturating_add(size);
            spool.files.push_back(Entry {
                path,
                size,
                evicted,
            });
        }
        Ok(spool)
    }

    /// Keeps a batch. Returns the batches removed to make room, oldest
    /// first; a batch larger than the whole bound is not kept and comes
    /// back itself. On an I/O error nothing is kept.
    pub fn push(
        &mut self,
        bytes: &[u8],
        instance: &[u8; 16],
        sequence: u64,
        records: u32,
    ) -> io::Result<Vec<Evicted>> {
        let evicted = Evicted {
            instance: hex(instance),
            sequence,
            records,
            carried: carried(bytes),
        };
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > self.max_bytes {
            return Ok(vec![evicted]);
        }
        let mut gone = Vec::new();
        while self.bytes.saturating_add(size) > self.max_bytes {
            match self.evict_oldest() {
                Some(e) => gone.push(e),
                None => break,
            }
        }
        let name = format!(
            "{:020}-{}-{}-{}.batch",
            self.next, evicted.instance, sequence, records
        );
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            // The rename itself must survive a crash.
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _gone = fs::remove_file(&tmp);
            return Err(e);
        }
        self.next = self.next.saturating_add(1);
        self.bytes = self.bytes.saturating_add(size);
        self.files.push_back(Entry {
            path,
            size,
            evicted,
        });
        Ok(gone)
    }

    /// The oldest batch's bytes and record count. An unreadable file is
    /// removed and reported as evicted.
    pub fn oldest(&mut self) -> Option<Result<(Vec<u8>, u32), Evicted>> {
        let entry = self.files.front()?;
        let records = entry.evicted.records;
        Some(match fs::read(&entry.path) {
            Ok(bytes) => Ok((bytes, records)),
            Err(_) => Err(self.evict_oldest()?),
        })
    }

    /// Removes the oldest batch, sent.
    pub fn remove_oldest(&mut self) {
        if let Some(entry) = self.files.pop_front() {
            let _gone = fs::remove_file(&entry.path);
            self.bytes = self.bytes.saturating_sub(entry.size);
        }
    }

    /// Removes the oldest batch unsent, with what it was carrying.
    fn evict_oldest(&mut self) -> Option<Evicted> {
        let entry = self.files.pop_front()?;
        let mut evicted = entry.evicted;
        if let Ok(bytes) = fs::read(&entry.path) {
            evicted.carried = carried(&bytes);
        }
        let _gone = fs::remove_file(&entry.path);
        self.bytes = self.bytes.saturating_sub(entry.size);
        Some(evicted)
    }

    /// Bytes kept.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Batches kept.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The drops a batch reports (none when it does not decode).
fn carried(bytes: &[u8]) -> Drops {
    BatchReader::default()
        .decode(bytes)
        .map(|b| b.drops)
        .unwrap_or_default()
}

/// 32 lowercase hex digits.
pub fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_name(name: &str) -> Option<(u64, Evicted)> {
    let stem = name.strip_suffix(".batch")?;
    let mut parts = stem.split('-');
    let order = parts.next()?.parse().ok()?;
    let instance = parts.next()?;
    let sequence = parts.next()?.parse().ok()?;
    let records = parts.next()?.parse().ok()?;
    if parts.next().is_some()
        || instance.len() != 32
        || !instance.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return None;
    }
    Some((
        order,
        Evicted {
            instance: instance.to_owned(),
            sequence,
            records,
            carried: Drops::default(),
        },
    ))
}

/// A destination's folder name: its address with anything but letters,
/// digits, dots and dashes made `_`.
pub fn folder_for(upstream: &str) -> String {
    upstream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: [u8; 16] = [0xab; 16];

    #[test]
    fn batches_survive_a_reopen_in_order_and_the_bound_evicts_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 250).unwrap();
        assert!(s.push(&[1; 100], &ID, 1, 10).unwrap().is_empty());
        assert!(s.push(&[2; 100], &ID, 2, 20).unwrap().is_empty());
        let gone = s.push(&[3; 100], &ID, 3, 30).unwrap();
        assert_eq!(
            gone,
            vec![Evicted {
                instance: hex(&ID),
                sequence: 1,
                records: 10,
                carried: Drops::default(),
            }]
        );
        assert_eq!((s.len(), s.bytes()), (2, 200));
        // What a killed process left: one half-written file, one stranger.
        std::fs::write(dir.path().join("x.batch.tmp"), b"half").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"keep").unwrap();
        let mut s = Spool::open(dir.path(), 250).unwrap();
        assert_eq!(s.oldest().unwrap().unwrap(), (vec![2; 100], 20));
        s.remove_oldest();
        assert_eq!(s.oldest().unwrap().unwrap(), (vec![3; 100], 30));
        assert!(s.push(&[4; 100], &ID, 4, 40).unwrap().is_empty());
        s.remove_oldest();
        assert_eq!(s.oldest().unwrap().unwrap().1, 40, "new files come after");
        assert!(!dir.path().join("x.batch.tmp").exists());
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn a_batch_larger_than_the_bound_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 50).unwrap();
        let gone = s.push(&[0; 100], &ID, 9, 5).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].records, 5);
        assert!(s.is_empty());
    }

    #[test]
    fn folder_names_are_tame() {
        assert_eq!(folder_for("10.0.0.5:9400"), "10.0.0.5_9400");
        assert_eq!(folder_for("[::1]:9400"), "___1__9400");
    }
}
