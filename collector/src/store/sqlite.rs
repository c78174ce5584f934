//! The embedded store: one SQLite file in WAL mode. Commits are durable
//! (`synchronous = FULL`) before the collector acknowledges, and one
//! connection writes, so SQLite's single-writer rule costs nothing.
//!
//! Request rows are narrow: each distinct text is stored once in
//! `kong_looker_text` and rows hold its id (migration 2 says why). The
//! `kong_looker_requests` view shows them with the contract's columns.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use foldhash::fast::RandomState;
use rusqlite::{CachedStatement, Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::{
    BATCH_COLUMNS, BATCH_REPLACES_NOTICE, COMMITTED_COUNTS, Commit, CommitReport, DropCounts,
    Migration, SET_DROPS, StoreError, Summary, abandoned, clamp, dangling, iso_ms,
    known_fields_sql, nonempty, now_ms, placeholders, uncount,
};
use super::{ai_fills, merge_set};
use crate::row::{REQUEST_COLUMNS, RowView, id_text};

/// Migrations, in order. (Each store lists its own files; the lists look
/// alike because they are data.)
pub const MIGRATIONS: [Migration; 4] = [
    Migration {
        version: 1,
        name: "0001_tables.sql",
        sql: include_str!("migrations/sqlite/0001_tables.sql"),
    },
    Migration {
        version: 2,
        name: "0002_narrow_rows.sql",
        sql: include_str!("migrations/sqlite/0002_narrow_rows.sql"),
    },
    Migration {
        version: 3,
        name: "0003_abandoned_batches.sql",
        sql: include_str!("migrations/sqlite/0003_abandoned_batches.sql"),
    },
    Migration {
        version: 4,
        name: "0004_ai_usage.sql",
        sql: include_str!("migrations/sqlite/0004_ai_usage.sql"),
    },
];

/// Texts whose ids the store remembers. Beyond this the memory is dropped
/// and refilled from the table: ids never change, so forgetting is safe.
const TEXT_IDS_REMEMBERED: usize = 1 << 18;

/// A SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Ids of texts in `kong_looker_text`, committed ones only.
    text_ids: HashMap<Box<str>, i64, RandomState>,
}

impl SqliteStore {
    /// Opens (creating) the file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)
            .map_err(|e| StoreError(format!("sqlite: cannot open {}: {e}", path.display())))?;
        // Large pages suit an append-mostly table (set before the first
        // table exists; later opens keep the file's size). A 64 MiB cache
        // keeps a group commit from spilling pages to the WAL mid-way and
        // the time index from being read back from disk.
        conn.pragma_update(None, "page_size", 65536)?;
        conn.pragma_update(None, "cache_size", -65536)?;
        // WAL lets readers (Looker exports, `stats`) run beside the writer;
        // FULL makes each commit durable before the 204 goes out.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
            text_ids: HashMap::default(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn migrate(&mut self) -> Result<Vec<Migration>, StoreError> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kong_looker_migrations (
                 version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )?;
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            let tx = self.conn.transaction()?;
            let done: Option<i64> = tx
                .query_row(
                    "SELECT version FROM kong_looker_migrations WHERE version = ?1",
                    [m.version],
                    |r| r.get(0),
                )
                .optional()?;
            if done.is_none() {
                tx.execute_batch(m.sql)
                    .map_err(|e| StoreError(format!("sqlite: migration {}: {e}", m.name)))?;
                tx.execute(
                    "INSERT INTO kong_looker_migrations VALUES (?1, ?2, ?3)",
                    params![m.version, m.name, iso_ms(now_ms())],
                )?;
                applied.push(m);
            }
            tx.commit()?;
        }
        Ok(applied)
    }

    pub(super) fn commit(&mut self, commit: &Commit<'_>) -> Result<CommitReport, StoreError> {
        if self.text_ids.len() > TEXT_IDS_REMEMBERED {
            self.text_ids.clear();
        }
        let mut added = HashMap::default();
        let result = Self::commit_in(&mut self.conn, &self.text_ids, &mut added, commit);
        // Ids of texts inserted by a transaction that rolled back would
        // point nowhere; only a commit makes them safe to remember.
        if result.is_ok() {
            self.text_ids.extend(added);
        }
        result
    }

    fn commit_in(
        conn: &mut Connection,
        known: &HashMap<Box<str>, i64, RandomState>,
        added: &mut HashMap<Box<str>, i64, RandomState>,
        commit: &Commit<'_>,
    ) -> Result<CommitReport, StoreError> {
        let committed_at = iso_ms(now_ms());
        let tx = conn.transaction()?;
        let mut report = CommitReport::default();
        {
            // A batch lands once; on the row of a notice that it had been
            // abandoned, it takes the row over.
            let mut batch_stmt = tx.prepare_cached(&format!(
                "INSERT INTO kong_looker_batches ({BATCH_COLUMNS}) VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'committed')
                 {BATCH_REPLACES_NOTICE}"
            ))?;
            // A notice lands only on a sequence number nothing covers yet.
            let mut notice_stmt = tx.prepare_cached(&format!(
                "INSERT INTO kong_looker_batches ({BATCH_COLUMNS}) VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, 0, 0, 0, NULL, ?7, ?8, 'abandoned')
                 ON CONFLICT DO NOTHING"
            ))?;
            let mut filter_stmt = tx.prepare_cached(&insert_sql(true))?;
            let mut log_stmt = tx.prepare_cached(&insert_sql(false))?;
            let mut texts = Texts::new(&tx, known, added)?;
            let mut dict_stmt = tx.prepare_cached(
                "INSERT INTO kong_looker_dictionary (instance_id, generation, definitions)
                 VALUES (?1, ?2, ?3)",
            )?;
            let mut committed_stmt = tx.prepare_cached(&placeholders(COMMITTED_COUNTS, '?'))?;
            let mut drops_stmt = tx.prepare_cached(&placeholders(SET_DROPS, '?'))?;
            for b in &commit.batches {
                let d = &b.batch.drops;
                let stored = batch_stmt.execute(params![
                    b.instance_id,
                    clamp(b.batch.sequence),
                    nonempty(&b.batch.node_id),
                    nonempty(&b.batch.filter_version),
                    nonempty(&b.batch.kong_version),
                    b.batch.generation,
                    b.batch.len() as i64,
                    clamp(d.buffer_full),
                    clamp(d.dispatch_failed),
                    clamp(d.capture_error),
                    clamp(d.instance_reset),
                    (b.batch.cut_time_ms != 0).then(|| iso_ms(b.batch.cut_time_ms)),
                    iso_ms(b.received_at_ms),
                    committed_at,
                ])? == 1;
                // Additions are kept even for a batch stored before: the
                // in-memory dictionary holds them, and later additions
                // continue from them.
                if let Some(defs) = &b.definitions {
                    dict_stmt.execute(params![b.instance_id, b.batch.generation, defs])?;
                }
                report.inserted.push(stored);
                if !stored {
                    report.abandoned.push(Vec::new());
                    continue;
                }
                let mut covered = Vec::new();
                let mut drops: DropCounts = [
                    clamp(d.buffer_full),
                    clamp(d.dispatch_failed),
                    clamp(d.capture_error),
                    clamp(d.instance_reset),
                ];
                let mut uncounted = false;
                for sequence in abandoned(b.batch) {
                    if let Some(counts) = committed_stmt
                        .query_row(params![b.instance_id, clamp(sequence)], |r| {
                            Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
                        })
                        .optional()?
                    {
                        uncount(&mut drops, counts);
                        uncounted = true;
                        continue;
                    }
                    if notice_stmt.execute(params![
                        b.instance_id,
                        clamp(sequence),
                        nonempty(&b.batch.node_id),
                        nonempty(&b.batch.filter_version),
                        nonempty(&b.batch.kong_version),
                        b.batch.generation,
                        iso_ms(b.received_at_ms),
                        committed_at,
                    ])? == 1
                    {
                        covered.push(sequence);
                    }
                }
                if uncounted {
                    drops_stmt.execute(params![
                        drops[0],
                        drops[1],
                        drops[2],
                        drops[3],
                        b.instance_id,
                        clamp(b.batch.sequence),
                    ])?;
                }
                report.abandoned.push(covered);
                let rows = b.batch.rows(b.dictionary).map_err(dangling)?;
                for row in rows {
                    write_row(
                        &mut filter_stmt,
                        &mut texts,
                        &RowView::filter(row, &b.instance_id, b.batch.sequence),
                    )?;
                }
            }
            for row in &commit.log_rows {
                report.log_rows_landed += write_row(&mut log_stmt, &mut texts, &row.view())? as u64;
            }
        }
        tx.commit()?;
        Ok(report)
    }

    pub(super) fn definitions(
        &mut self,
        instance_id: &str,
        generation: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT definitions FROM kong_looker_dictionary
             WHERE instance_id = ?1 AND generation = ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![instance_id, generation], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Opens the file read-only and checks the schema is there.
    pub(super) fn ping(path: &Path) -> Result<(), StoreError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.query_row("SELECT count(*) FROM kong_looker_migrations", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(())
    }

    pub(super) fn summary(&mut self) -> Result<Summary, StoreError> {
        // Counted on the narrow rows: through the view, each row's origin
        // would be looked up in kong_looker_text.
        let sql = super::summary_sql(
            "(SELECT count(*) FROM kong_looker_request_rows),
             (SELECT count(*) FROM kong_looker_request_rows
               WHERE origin = (SELECT id FROM kong_looker_text WHERE value = 'filter')),
             (SELECT count(*) FROM kong_looker_request_rows
               WHERE origin = (SELECT id FROM kong_looker_text WHERE value = 'http_log'))",
        );
        let mut s = self.conn.query_row(&sql, [], |r| {
            Ok(Summary {
                rows: r.get(0)?,
                filter_rows: r.get(1)?,
                http_log_rows: r.get(2)?,
                batches: r.get(3)?,
                producers: r.get(4)?,
                missing_batches: r.get(5)?,
                abandoned_batches: r.get(6)?,
                drops_buffer_full: r.get(7)?,
                drops_dispatch_failed: r.get(8)?,
                drops_capture_error: r.get(9)?,
                drops_instance_reset: r.get(10)?,
                newest_commit: None,
            })
        })?;
        s.newest_commit = self.conn.query_row(
            "SELECT max(committed_at) FROM kong_looker_batches",
            [],
            |r| r.get(0),
        )?;
        Ok(s)
    }

    pub(super) fn request_columns(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM pragma_table_info('kong_looker_requests') ORDER BY cid")?;
        let names = stmt.query_map([], |r| r.get(0))?;
        Ok(names.collect::<Result<_, _>>()?)
    }
}

/// Text ids for one transaction: remembered ones, then the table, then a
/// new row in it. Texts borrowed for the whole transaction (`'c`: the
/// commit's batches, dictionaries and http-log entries) are also known by
/// address, which saves hashing them again in the next row.
struct Texts<'t, 'k, 'c> {
    known: &'k HashMap<Box<str>, i64, RandomState>,
    /// Texts this transaction looked up in the table or added to it.
    added: &'k mut HashMap<Box<str>, i64, RandomState>,
    /// Ids by (address, length). Sound because a `&'c str` can be neither
    /// freed nor changed while this lives, so no other text can take its
    /// place.
    at: HashMap<(usize, usize), i64, RandomState>,
    borrowed: PhantomData<&'c str>,
    select: CachedStatement<'t>,
    insert: CachedStatement<'t>,
}

impl<'t, 'k, 'c> Texts<'t, 'k, 'c> {
    fn new(
        tx: &'t Transaction<'_>,
        known: &'k HashMap<Box<str>, i64, RandomState>,
        added: &'k mut HashMap<Box<str>, i64, RandomState>,
    ) -> Result<Self, StoreError> {
        Ok(Texts {
            known,
            added,
            at: HashMap::default(),
            borrowed: PhantomData,
            select: tx.prepare_cached("SELECT id FROM kong_looker_text WHERE value = ?1")?,
            insert: tx.prepare_cached("INSERT INTO kong_looker_text (value) VALUES (?1)")?,
        })
    }

    /// The id of a text borrowed for the whole transaction.
    fn held(&mut self, text: Option<&'c str>) -> Result<Option<i64>, StoreError> {
        let Some(text) = text else {
            return Ok(None);
        };
        let at = (text.as_ptr() as usize, text.len());
        if let Some(id) = self.at.get(&at) {
            return Ok(Some(*id));
        }
        let id = self.id(Some(text))?;
        if let Some(id) = id {
            self.at.insert(at, id);
        }
        Ok(id)
    }

    /// The id of `text`; `None` stays `None`.
    fn id(&mut self, text: Option<&str>) -> Result<Option<i64>, StoreError> {
        let Some(text) = text else {
            return Ok(None);
        };
        if let Some(id) = self.known.get(text).or_else(|| self.added.get(text)) {
            return Ok(Some(*id));
        }
        let id = match self
            .select
            .query_row([text], |r| r.get::<_, i64>(0))
            .optional()?
        {
            Some(id) => id,
            None => self.insert.insert([text])?,
        };
        self.added.insert(text.into(), id);
        Ok(Some(id))
    }
}

/// The insert for one request row. A row replaces the other path's row
/// for the same request id when it knows more of what the request was
/// ([`known_fields_sql`]), the filter's on a tie; a row never replaces one
/// from its own path (a retry). AI figures survive either way
/// ([`merge_set`]).
fn insert_sql(filter: bool) -> String {
    // The table's columns are the contract's, with the time as Unix ms.
    let columns: Vec<&str> = REQUEST_COLUMNS
        .iter()
        .map(|c| {
            if *c == "started_at" {
                "started_at_ms"
            } else {
                c
            }
        })
        .collect();
    let cols = columns.join(", ");
    let marks: Vec<String> = (1..=REQUEST_COLUMNS.len())
        .map(|i| format!("?{i}"))
        .collect();
    let (other, wins) = if filter {
        ("http_log", ">=")
    } else {
        ("filter", ">")
    };
    let table = "kong_looker_request_rows";
    let wins = format!(
        "{} {wins} {}",
        known_fields_sql("excluded"),
        known_fields_sql(table)
    );
    let set = merge_set(&columns, table, &wins);
    let action = format!(
        "DO UPDATE SET {set} WHERE {table}.origin = \
         (SELECT id FROM kong_looker_text WHERE value = '{other}') \
         AND ({wins} OR {})",
        ai_fills(table)
    );
    format!(
        "INSERT INTO {table} ({cols}) VALUES ({}) \
         ON CONFLICT (request_id) WHERE request_id IS NOT NULL {action}",
        marks.join(", ")
    )
}

/// Inserts one row; returns whether it landed (or replaced the other
/// path's row, or gave it the AI figures it lacked).
fn write_row<'c>(
    stmt: &mut CachedStatement<'_>,
    texts: &mut Texts<'_, '_, 'c>,
    v: &RowView<'c>,
) -> Result<bool, StoreError> {
    let r = &v.row;
    let groups = v.groups.joined();
    let n = stmt.execute(params![
        r.started_at_ms,
        texts.held(r.workspace)?,
        texts.held(r.route_id)?,
        texts.held(r.route_name)?,
        texts.held(r.service_id)?,
        texts.held(r.service_name)?,
        texts.held(r.method)?,
        texts.held(r.host)?,
        texts.held(r.path)?,
        r.status,
        texts.held(r.response_source)?,
        clamp(r.latency_total_us),
        r.latency_upstream_us.map(clamp),
        clamp(r.request_bytes),
        clamp(r.response_bytes),
        texts.held(r.auth_method)?,
        texts.held(r.trust)?,
        r.anonymous,
        texts.held(r.consumer_id)?,
        texts.held(r.consumer_username)?,
        texts.held(r.consumer_custom_id)?,
        texts.held(r.credential)?,
        texts.id(groups.as_deref())?,
        texts.held(r.subject)?,
        texts.held(r.issuer)?,
        texts.held(r.client_id)?,
        texts.held(r.client_address)?,
        texts.held(r.agent_category)?,
        texts.held(r.agent_name)?,
        id_text(r.request_id),
        id_text(r.trace_id),
        f64::from(r.sample_weight),
        texts.held(Some(v.origin.name()))?,
        texts.held(v.instance_id)?,
        v.batch_sequence.map(clamp),
        texts.held(r.ai_provider)?,
        texts.held(r.ai_request_model)?,
        texts.held(r.ai_response_model)?,
        texts.held(r.ai_request_mode)?,
        r.ai_prompt_tokens.map(clamp),
        r.ai_completion_tokens.map(clamp),
        r.ai_total_tokens.map(clamp),
        r.ai_cost_micros.map(clamp),
        r.ai_llm_latency_ms.map(clamp),
        r.ai_time_to_first_token_ms.map(clamp),
        texts.held(r.ai_cache_status)?,
        r.ai_cache_fetch_latency_ms.map(clamp),
        texts.held(r.ai_embeddings_model)?,
        r.ai_guardrail_blocks,
        texts.held(r.ai_guardrail)?,
        r.ai_mcp_tool_calls,
        texts.held(r.ai_mcp_tool)?,
        r.ai_calls,
        r.ai_unreadable,
    ])?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_log::{LogRow, Mapper};
    use kong_looker_core::capture::privacy::AddressMode;

    /// Kong's sample http-log entry with its route name, status and id.
    fn entry(route: &str, status: u16, id: &str) -> LogRow {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/kong_sample.json")).unwrap();
        v["route"]["name"] = route.into();
        v["response"]["status"] = status.into();
        v["request"]["id"] = id.into();
        let body = serde_json::to_vec(&v).unwrap();
        Mapper::new(AddressMode::Keep, None)
            .map(&body)
            .unwrap()
            .remove(0)
    }

    fn commit(store: &mut SqliteStore, rows: &[&LogRow]) -> Result<CommitReport, StoreError> {
        store.commit(&Commit {
            batches: Vec::new(),
            log_rows: rows.to_vec(),
        })
    }

    fn route_names(store: &SqliteStore) -> Vec<(u16, Option<String>)> {
        let mut stmt = store
            .conn
            .prepare("SELECT status, route_name FROM kong_looker_requests ORDER BY status")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// A text first seen in a transaction that rolls back is not
    /// remembered: its id went with the transaction.
    #[test]
    fn texts_of_a_rolled_back_commit_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("t.sqlite")).unwrap();
        store.migrate().unwrap();
        store
            .conn
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON kong_looker_request_rows
                 WHEN NEW.status = 599 BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .unwrap();
        let (a, b) = (
            entry("only-in-the-rolled-back-commit", 200, "aa"),
            entry("x", 599, "bb"),
        );
        assert!(commit(&mut store, &[&a, &b]).is_err());
        assert!(route_names(&store).is_empty());
        store.conn.execute_batch("DROP TRIGGER refuse").unwrap();

        let c = entry("only-in-the-rolled-back-commit", 201, "cc");
        let d = entry("another", 202, "dd");
        assert_eq!(commit(&mut store, &[&c, &d]).unwrap().log_rows_landed, 2);
        // Remembered from this commit on, and read back through the view.
        let e = entry("another", 203, "ee");
        assert_eq!(commit(&mut store, &[&e]).unwrap().log_rows_landed, 1);
        assert_eq!(
            route_names(&store),
            [
                (201, Some("only-in-the-rolled-back-commit".into())),
                (202, Some("another".into())),
                (203, Some("another".into())),
            ]
        );
        let texts: i64 = store
            .conn
            .query_row(
                "SELECT count(*) FROM kong_looker_text WHERE value IN ('another', 'x')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(texts, 1, "each text is stored once");
    }
}
