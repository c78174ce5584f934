//! The stores: where committed batches land. SQLite is the embedded
//! default; PostgreSQL is the Looker path; ClickHouse is for fleets past
//! one machine. All three show Looker the same tables (`migrations/`).
//! SQLite and PostgreSQL commit a [`Commit`] (several batches and http-log
//! bodies) in one transaction, so a batch's rows, its key and its
//! dictionary entries land together or not at all; ClickHouse gets the
//! same result from idempotent rows (see its module).

pub mod clickhouse;
pub mod postgres;
pub mod sqlite;

use std::fmt;

use kong_looker_proto::{DecodedBatch, Dictionary};

pub use clickhouse::{ChStore, ChUrl};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::http_log::LogRow;

/// Where the store is: `sqlite:PATH`, a `postgres://` URL or a
/// `clickhouse://` one.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
    /// A ClickHouse server or cluster.
    ClickHouse(ChUrl),
}

/// How the committer groups work for a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grouping {
    /// Most jobs in one commit.
    pub max_group: usize,
    /// Rows past which a commit starts without waiting.
    pub max_rows: usize,
    /// How long after the previous commit began the next may wait for
    /// more work.
    pub linger: std::time::Duration,
}

impl StoreUrl {
    /// The grouping that suits the store. The SQL stores commit whatever
    /// waits. ClickHouse wants few, large inserts (each insert makes a part
    /// that must be merged): about one a second, up to a million rows,
    /// which one block holds whole (`max_insert_block_size`).
    pub fn grouping(&self) -> Grouping {
        match self {
            StoreUrl::Sqlite(_) | StoreUrl::Postgres(_) => Grouping {
                max_group: 64,
                max_rows: usize::MAX,
                linger: std::time::Duration::ZERO,
            },
            StoreUrl::ClickHouse(_) => Grouping {
                max_group: 8192,
                max_rows: 1_000_000,
                linger: std::time::Duration::from_secs(1),
            },
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for StoreUrl {
    /// Shows the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreUrl::Postgres(url) => {
                if let Some((scheme, rest)) = url.split_once("://")
                    && let Some((userinfo, host)) = rest.split_once('@')
                    && let Some((user, _password)) = userinfo.split_once(':')
                {
                    return write!(f, "{scheme}://{user}:***@{host}");
                }
                f.write_str(url)
            }
            StoreUrl::ClickHouse(url) => fmt::Display::fmt(url, f),
        }
    }
}

impl std::str::FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:kong_looker.sqlite".into());
            }
            Ok(StoreUrl::Sqlite(path.into()))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreUrl::Postgres(s.to_owned()))
        } else if s.starts_with("clickhouse:") {
            Ok(StoreUrl::ClickHouse(ChUrl::parse(s)?))
        } else {
            Err(format!(
                "unknown store {s:?}: use sqlite:PATH, postgres://USER@HOST:PORT/DB \
                 or clickhouse://USER:PASSWORD@HOST:8123/DB"
            ))
        }
    }
}

/// A store failure. The collector answers 503 and the producer keeps the
/// data, so every failure is worth retrying.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(format!("sqlite: {e}"))
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError(format!("postgres: {}", chain(&e)))
    }
}

/// An error with its causes, e.g. `db error: ERROR: relation … does not
/// exist`; PostgreSQL's own message is a cause, not the error's text.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// One filter batch, ready to store.
#[derive(Debug)]
pub struct BatchCommit<'a> {
    /// The decoded batch.
    pub batch: &'a DecodedBatch,
    /// Its producer's dictionary, holding every entry the batch refers to.
    pub dictionary: &'a Dictionary,
    /// The instance id as a canonical UUID.
    pub instance_id: String,
    /// What the batch added to the dictionary (an encoded
    /// `kong_looker.v1.Dictionary`), if anything.
    pub definitions: Option<Vec<u8>>,
    /// When the collector received it, Unix ms.
    pub received_at_ms: i64,
}

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// Filter batches, in arrival order.
    pub batches: Vec<BatchCommit<'a>>,
    /// Http-log entries.
    pub log_rows: Vec<&'a LogRow>,
}

/// What a commit did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Per batch: stored now (`true`), or already stored (`false`).
    pub inserted: Vec<bool>,
    /// Per batch stored now: the sequence numbers of its `drops.abandoned`
    /// that no batch or earlier notice covered, and that it now covers.
    pub abandoned: Vec<Vec<u64>>,
    /// Http-log rows that landed; the rest were already there.
    pub log_rows_landed: u64,
}

/// A summary of what a store holds (`kong-looker-collector stats`).
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Request rows.
    pub rows: i64,
    /// Rows from the filter.
    pub filter_rows: i64,
    /// Rows only http-log saw.
    pub http_log_rows: i64,
    /// Batches committed.
    pub batches: i64,
    /// Distinct producers (filter instances).
    pub producers: i64,
    /// Sequence numbers missing below each producer's highest: neither
    /// committed nor reported abandoned by their producer.
    pub missing_batches: i64,
    /// Sequence numbers their producers reported abandoning (in
    /// `drops.abandoned`) that never arrived: gaps the drops explain.
    pub abandoned_batches: i64,
    /// Drops the producers reported, by reason.
    pub drops_buffer_full: i64,
    /// See [`Summary::drops_buffer_full`].
    pub drops_dispatch_failed: i64,
    /// See [`Summary::drops_buffer_full`].
    pub drops_capture_error: i64,
    /// See [`Summary::drops_buffer_full`].
    pub drops_instance_reset: i64,
    /// The newest commit, ISO 8601 UTC.
    pub newest_commit: Option<String>,
}

/// A summary's row counts (all rows, the filter's, http-log's), as the
/// contract's table or view answers them.
const ROW_COUNTS_SQL: &str = "
  (SELECT count(*) FROM kong_looker_requests),
  (SELECT count(*) FROM kong_looker_requests WHERE origin = 'filter'),
  (SELECT count(*) FROM kong_looker_requests WHERE origin = 'http_log')";

/// The SQL of a summary, given its row counts; the same in both dialects.
/// `kong_looker_batches` holds one row per sequence number the collector
/// knows of, committed or reported abandoned, so a number below a
/// producer's highest without a row is one nobody accounts for.
fn summary_sql(row_counts: &str) -> String {
    format!(
        "SELECT {row_counts},
  (SELECT count(*) FROM kong_looker_batches WHERE state = 'committed'),
  (SELECT count(DISTINCT instance_id) FROM kong_looker_batches WHERE state = 'committed'),
  (SELECT CAST(coalesce(sum(m - n), 0) AS BIGINT) FROM
     (SELECT max(sequence) AS m, count(*) AS n FROM kong_looker_batches GROUP BY instance_id) p),
  (SELECT count(*) FROM kong_looker_batches WHERE state = 'abandoned'),
  (SELECT CAST(coalesce(sum(drops_buffer_full), 0) AS BIGINT) FROM kong_looker_batches),
  (SELECT CAST(coalesce(sum(drops_dispatch_failed), 0) AS BIGINT) FROM kong_looker_batches),
  (SELECT CAST(coalesce(sum(drops_capture_error), 0) AS BIGINT) FROM kong_looker_batches),
  (SELECT CAST(coalesce(sum(drops_instance_reset), 0) AS BIGINT) FROM kong_looker_batches)"
    )
}

/// The columns of `kong_looker_batches` that the committer writes, in
/// table order; `state` last.
const BATCH_COLUMNS: &str = "instance_id, sequence, node_id, filter_version, kong_version, \
     generation, records, drops_buffer_full, drops_dispatch_failed, drops_capture_error, \
     drops_instance_reset, cut_at, received_at, committed_at, state";

/// What a committed batch sets when it lands on the row of a notice that
/// it had been abandoned: everything (the key aside).
const BATCH_REPLACES_NOTICE: &str = "ON CONFLICT (instance_id, sequence) DO UPDATE SET \
     node_id = excluded.node_id, filter_version = excluded.filter_version, \
     kong_version = excluded.kong_version, generation = excluded.generation, \
     records = excluded.records, drops_buffer_full = excluded.drops_buffer_full, \
     drops_dispatch_failed = excluded.drops_dispatch_failed, \
     drops_capture_error = excluded.drops_capture_error, \
     drops_instance_reset = excluded.drops_instance_reset, cut_at = excluded.cut_at, \
     received_at = excluded.received_at, committed_at = excluded.committed_at, \
     state = excluded.state \
     WHERE kong_looker_batches.state = 'abandoned'";

/// A migration: its number, name and SQL.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Applied in ascending order; recorded in `kong_looker_migrations`.
    pub version: i64,
    /// The file's name.
    pub name: &'static str,
    /// Its statements.
    pub sql: &'static str,
}

/// An open store.
#[derive(Debug)]
pub enum Store {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
    /// ClickHouse (boxed: its client is large).
    ClickHouse(Box<ChStore>),
}

impl Store {
    /// Opens the store; nothing is created until [`Store::migrate`].
    pub async fn open(url: &StoreUrl) -> Result<Store, StoreError> {
        Ok(match url {
            StoreUrl::Sqlite(path) => Store::Sqlite(SqliteStore::open(path)?),
            StoreUrl::Postgres(url) => Store::Postgres(PgStore::open(url)?),
            StoreUrl::ClickHouse(url) => Store::ClickHouse(Box::new(ChStore::open(url)?)),
        })
    }

    /// Applies the migrations the store lacks; returns the ones applied.
    pub async fn migrate(&mut self) -> Result<Vec<Migration>, StoreError> {
        match self {
            Store::Sqlite(s) => tokio::task::block_in_place(|| s.migrate()),
            Store::Postgres(p) => p.migrate().await,
            Store::ClickHouse(c) => c.migrate().await,
        }
    }

    /// Commits in one transaction.
    pub async fn commit(&mut self, commit: &Commit<'_>) -> Result<CommitReport, StoreError> {
        match self {
            Store::Sqlite(s) => tokio::task::block_in_place(|| s.commit(commit)),
            Store::Postgres(p) => p.commit(commit).await,
            Store::ClickHouse(c) => c.commit(commit).await,
        }
    }

    /// The dictionary additions a producer's committed batches made, in
    /// commit order.
    pub async fn definitions(
        &mut self,
        instance_id: &str,
        generation: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                tokio::task::block_in_place(|| s.definitions(instance_id, generation))
            }
            Store::Postgres(p) => p.definitions(instance_id, generation).await,
            Store::ClickHouse(c) => c.definitions(instance_id, generation).await,
        }
    }

    /// What the store holds.
    pub async fn summary(&mut self) -> Result<Summary, StoreError> {
        match self {
            Store::Sqlite(s) => tokio::task::block_in_place(|| s.summary()),
            Store::Postgres(p) => p.summary().await,
            Store::ClickHouse(c) => c.summary().await,
        }
    }

    /// The columns of the requests table, in order, as the store reports
    /// them.
    pub async fn request_columns(&mut self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Sqlite(s) => tokio::task::block_in_place(|| s.request_columns()),
            Store::Postgres(p) => p.request_columns().await,
            Store::ClickHouse(c) => c.request_columns().await,
        }
    }

    /// A handle for health checks, which never waits on commits.
    pub fn prober(&self) -> Prober {
        match self {
            Store::Sqlite(s) => Prober::Sqlite(s.path().to_owned()),
            Store::Postgres(p) => Prober::Postgres(p.clone()),
            Store::ClickHouse(c) => Prober::ClickHouse(c.clone()),
        }
    }
}

/// Checks that a store answers, beside the committer.
#[derive(Clone, Debug)]
pub enum Prober {
    /// A SQLite file, opened read-only per check.
    Sqlite(std::path::PathBuf),
    /// The PostgreSQL pool.
    Postgres(PgStore),
    /// The ClickHouse client.
    ClickHouse(Box<ChStore>),
}

impl Prober {
    /// Ok when the store answers and holds the schema.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Prober::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || SqliteStore::ping(&path))
                    .await
                    .map_err(|e| StoreError(e.to_string()))?
            }
            Prober::Postgres(p) => p.ping().await,
            Prober::ClickHouse(c) => c.ping().await,
        }
    }
}

/// Unix ms as ISO 8601 UTC with milliseconds, e.g. `2026-11-29T03:25:19.123Z`.
pub fn iso_ms(ms: i64) -> String {
    use time::macros::format_description;
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Reads a committed batch's record count and drops, by instance and
/// sequence; the same SQL in both dialects (`?`/`$` placeholders aside).
const COMMITTED_COUNTS: &str = "SELECT records, drops_buffer_full, drops_dispatch_failed, \
     drops_capture_error, drops_instance_reset FROM kong_looker_batches \
     WHERE instance_id = {1} AND sequence = {2} AND state = 'committed'";

/// Sets a batch's drops after [`uncount`].
const SET_DROPS: &str = "UPDATE kong_looker_batches SET drops_buffer_full = {1}, \
     drops_dispatch_failed = {2}, drops_capture_error = {3}, drops_instance_reset = {4} \
     WHERE instance_id = {5} AND sequence = {6}";

/// `sql` with `{n}` placeholders written as `?n` (SQLite) or `$n`
/// (PostgreSQL).
fn placeholders(sql: &str, mark: char) -> String {
    (1..=6).fold(sql.to_owned(), |s, n| {
        s.replace(&format!("{{{n}}}"), &format!("{mark}{n}"))
    })
}

/// Drops in the order of the batches table's columns: buffer full,
/// dispatch failed, capture error, instance reset.
type DropCounts = [i64; 4];

/// A producer that gave up on a batch the collector had committed after
/// all (its answer was lost, and the retries ran out) counted that batch's
/// records as dropped, and credited the drops it carried again. The
/// carrying batch's drops lose both here, so no record counts as stored
/// and dropped at once. `committed` is that batch's records and drops.
/// The records were counted under `dispatch_failed` (or, for a batch the
/// memory cap pushed out, `buffer_full`): they come off the first, and any
/// rest off the second.
fn uncount(drops: &mut DropCounts, committed: [i64; 5]) {
    let [
        records,
        buffer_full,
        dispatch_failed,
        capture_error,
        instance_reset,
    ] = committed;
    let less = |have: i64, take: i64| {
        (
            have.saturating_sub(take).max(0),
            take.saturating_sub(have).max(0),
        )
    };
    let (df, rest) = less(drops[1], records.saturating_add(dispatch_failed));
    let (bf, _) = less(drops[0], buffer_full.saturating_add(rest));
    drops[0] = bf;
    drops[1] = df;
    drops[2] = less(drops[2], capture_error).0;
    drops[3] = less(drops[3], instance_reset).0;
}

/// The sequence numbers a batch reports abandoned that can be batches of
/// its producer cut before it (1 to its own sequence, exclusive); anything
/// else is ignored rather than trusted to explain a gap.
fn abandoned(batch: &DecodedBatch) -> impl Iterator<Item = u64> + '_ {
    batch
        .drops
        .abandoned
        .iter()
        .copied()
        .filter(|s| (1..batch.sequence).contains(s))
}

/// How many of the fields that tell what a request was (method, host,
/// route, service, identity, agent, path template) the row in `table`
/// (an alias, or `excluded`) knows; the same SQL in both dialects. When the
/// filter and http-log both send a request, the row knowing more wins, and
/// on a tie the filter's (it knows trust, JWT claims, mTLS, SigV4).
fn known_fields_sql(t: &str) -> String {
    [
        format!("{t}.method IS NOT NULL"),
        format!("{t}.host IS NOT NULL"),
        format!("({t}.route_id IS NOT NULL OR {t}.route_name IS NOT NULL)"),
        format!("({t}.service_id IS NOT NULL OR {t}.service_name IS NOT NULL)"),
        format!("{t}.auth_method IS NOT NULL"),
        format!("{t}.agent_category IS NOT NULL"),
        format!("{t}.path IS NOT NULL"),
    ]
    .iter()
    .map(|known| format!("(CASE WHEN {known} THEN 1 ELSE 0 END)"))
    .collect::<Vec<_>>()
    .join(" + ")
}

/// The SET list that merges a request's row from the other path into the
/// stored one (`table`): every column from the incoming row (`excluded`)
/// where it `wins`, else kept; the AI columns from the row that added up
/// more LLM calls' usage (`ai_calls`), the winner's on a tie. The Wasm
/// filter sees no `ai` section (at most the model header, with no calls
/// added), so a filter row and http-log's row for the same AI request must
/// not lose the tokens and cost to the filter's win.
fn merge_set(columns: &[&str], table: &str, wins: &str) -> String {
    columns
        .iter()
        .map(|c| {
            if c.starts_with("ai_") {
                format!(
                    "{c} = CASE WHEN {} OR (excluded.ai_calls = {table}.ai_calls AND {wins}) \
                     THEN excluded.{c} ELSE {table}.{c} END",
                    ai_fills(table)
                )
            } else {
                format!("{c} = CASE WHEN {wins} THEN excluded.{c} ELSE {table}.{c} END")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// True where the incoming row brings AI figures of more calls than the
/// stored one.
fn ai_fills(table: &str) -> String {
    format!(
        "(excluded.ai_calls IS NOT NULL AND ({table}.ai_calls IS NULL OR excluded.ai_calls > {table}.ai_calls))"
    )
}

/// A count or size as the stores' signed 64-bit columns hold it.
fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A batch whose records refer past its producer's dictionary.
fn dangling(e: kong_looker_proto::DecodeError) -> StoreError {
    StoreError(format!("batch refers past its dictionary: {e}"))
}

/// An optional text column: empty means absent.
fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_and_hide_passwords() {
        assert_eq!(
            "sqlite:kong_looker.sqlite".parse::<StoreUrl>().unwrap(),
            StoreUrl::Sqlite("kong_looker.sqlite".into())
        );
        let pg: StoreUrl = "postgres://looker:s3cret@db:5432/kong".parse().unwrap();
        assert_eq!(pg.to_string(), "postgres://looker:***@db:5432/kong");
        assert!(
            "mysql://x"
                .parse::<StoreUrl>()
                .unwrap_err()
                .contains("unknown store")
        );
        assert!("sqlite:".parse::<StoreUrl>().is_err());
    }

    #[test]
    fn times_are_iso_utc() {
        assert_eq!(iso_ms(1_726_783_839_538), "2024-09-19T22:10:39.538Z");
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
    }
}
