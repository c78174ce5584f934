//! The ClickHouse store, for fleets past one machine. ClickHouse has no
//! transactions, so a commit is three synchronous inserts (request rows,
//! dictionary additions, batch rows last) of rows that a retry, a replay
//! or a second collector reproduces with the same keys. The tables are
//! `ReplacingMergeTree` on those keys and Looker reads views that collapse
//! them with `FINAL`, so every record counts once whichever insert failed
//! and however often the batch came back (`collector/README.md`).
//!
//! Talks HTTP with RowBinary through the official `clickhouse` crate. Its
//! schema validation needs a newer server than Debian's 18.16, so it is
//! off; a test inserts and reads back every row type on a real server.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use clickhouse::{Client, Compression, Row};
use serde::{Deserialize, Serialize, Serializer};

use super::{
    Commit, CommitReport, DropCounts, Migration, StoreError, Summary, abandoned, clamp, dangling,
    nonempty, now_ms, uncount,
};
use crate::row::{RowView, id_text};

/// Migrations, in order. Every statement must be idempotent (`IF NOT
/// EXISTS`): two collectors starting together may both apply one.
pub const MIGRATIONS: [Migration; 1] = [Migration {
    version: 1,
    name: "0001_tables.sql",
    sql: include_str!("migrations/clickhouse/0001_tables.sql"),
}];

/// Where the store is: `clickhouse://USER:PASSWORD@HOST:PORT/DB`, over
/// HTTP (port 8123 unless given), or HTTPS with `?secure=true` (port
/// 8443), checked against the bundled Mozilla roots or, with
/// `ca_file=PATH`, only against that PEM's certificates. Other query
/// parameters are ClickHouse settings sent with every statement, e.g.
/// `insert_quorum=2` on a replicated cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct ChUrl {
    /// `http://host:port` or `https://host:port`.
    pub endpoint: String,
    /// The user; `default` when the URL has none.
    pub user: String,
    /// The password, decoded.
    pub password: String,
    /// The database; `default` when the URL has none.
    pub database: String,
    /// Settings sent with every statement.
    pub settings: Vec<(String, String)>,
    /// A PEM file of the certificates to trust instead of the bundled
    /// roots.
    pub ca_file: Option<String>,
}

impl ChUrl {
    /// Parses a `clickhouse://` URL.
    pub fn parse(s: &str) -> Result<ChUrl, String> {
        let url = url::Url::parse(s).map_err(|e| format!("bad ClickHouse URL: {e}"))?;
        if url.scheme() != "clickhouse" {
            return Err(format!(
                "a ClickHouse URL starts with clickhouse://, not {}://",
                url.scheme()
            ));
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(
            "a ClickHouse URL needs a host, e.g. clickhouse://default@localhost:8123/default",
        )?;
        let mut secure = false;
        let mut settings = Vec::new();
        let mut ca_file = None;
        for (k, v) in url.query_pairs() {
            if k == "ca_file" {
                ca_file = Some(v.into_owned());
            } else if k == "secure" {
                secure = match v.as_ref() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => return Err(format!("secure={other}: use true or false")),
                };
            } else if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("{k:?} is not a ClickHouse setting name"));
            } else {
                settings.push((k.into_owned(), v.into_owned()));
            }
        }
        let (scheme, default_port) = if secure {
            ("https", 8443)
        } else {
            ("http", 8123)
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(Cow::into_owned)
                .map_err(|_| "the URL's user or password is not UTF-8 once decoded".to_owned())
        };
        let user = match url.username() {
            "" => "default".to_owned(),
            u => decode(u)?,
        };
        let password = decode(url.password().unwrap_or(""))?;
        let database = match url.path().trim_matches('/') {
            "" => "default".to_owned(),
            db if db.contains('/') => {
                return Err(format!("{db:?}: the path is one database name"));
            }
            db => decode(db)?,
        };
        Ok(ChUrl {
            endpoint: format!("{scheme}://{host}:{}", url.port().unwrap_or(default_port)),
            user,
            password,
            database,
            settings,
            ca_file,
        })
        .and_then(|u| match (&u.ca_file, secure) {
            (Some(_), false) => Err("ca_file is for HTTPS: add secure=true".to_owned()),
            _ => Ok(u),
        })
    }
}

impl std::fmt::Debug for ChUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// What a URL's parts keep as they are; the rest is percent-encoded.
const URL_TEXT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl std::fmt::Display for ChUrl {
    /// The URL without its password, which parses back to the same store.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, URL_TEXT).to_string();
        let (scheme, rest) = self.endpoint.split_once("://").unwrap_or(("http", ""));
        let pass = if self.password.is_empty() { "" } else { ":***" };
        write!(
            f,
            "clickhouse://{}{pass}@{rest}/{}",
            enc(&self.user),
            enc(&self.database)
        )?;
        let mut sep = '?';
        if scheme == "https" {
            f.write_str("?secure=true")?;
            sep = '&';
        }
        if let Some(ca) = &self.ca_file {
            write!(f, "{sep}ca_file={}", enc(ca))?;
            sep = '&';
        }
        for (k, v) in &self.settings {
            write!(f, "{sep}{k}={}", enc(v))?;
            sep = '&';
        }
        Ok(())
    }
}

/// The longest a statement may take before the commit fails (and is
/// answered 503, to be retried).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How times are stored: current ClickHouse has `DateTime64(3)`; servers
/// before 20.1 get `DateTime` and whole seconds. Read from the table the
/// store made, so a table created by an old server keeps working after an
/// upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeColumns {
    /// `DateTime64(3, 'UTC')`: Int64 ms.
    Millis,
    /// `DateTime('UTC')`: UInt32 seconds.
    Seconds,
}

/// A ClickHouse store: an HTTP client, cheap to clone.
#[derive(Clone)]
pub struct ChStore {
    client: Client,
    url: ChUrl,
    times: Option<TimeColumns>,
}

impl std::fmt::Debug for ChStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChStore")
            .field("url", &self.url.to_string())
            .finish_non_exhaustive()
    }
}

impl ChStore {
    /// Runs a statement's future under [`STATEMENT_TIMEOUT`]; errors name
    /// the server and the step.
    async fn timed<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = clickhouse::error::Result<T>>,
    ) -> Result<T, StoreError> {
        let at = &self.url.endpoint;
        match tokio::time::timeout(STATEMENT_TIMEOUT, f).await {
            Ok(r) => r.map_err(|e| {
                StoreError(format!("clickhouse at {at}: {what}: {}", super::chain(&e)))
            }),
            Err(_) => Err(StoreError(format!(
                "clickhouse at {at}: {what}: no answer in {} s",
                STATEMENT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// A client for `url`; connects lazily.
    pub fn open(url: &ChUrl) -> Result<Self, StoreError> {
        let client = match &url.ca_file {
            Some(ca) => client_trusting(ca)?,
            None => Client::default(),
        };
        let mut client = client
            .with_url(&url.endpoint)
            .with_user(&url.user)
            .with_database(&url.database)
            // 18.16 cannot describe tables the way validation asks.
            .with_validation(false)
            // ClickHouse's own LZ4 blocks: a row is about 500 bytes as
            // RowBinary and a group is up to a million rows, usually over a
            // network. On loopback it costs nothing measurable either way
            // (bench/RESULTS.md).
            .with_compression(Compression::Lz4);
        if !url.password.is_empty() {
            client = client.with_password(&url.password);
        }
        for (k, v) in &url.settings {
            client = client.with_setting(k, v);
        }
        Ok(ChStore {
            client,
            url: url.clone(),
            times: None,
        })
    }

    /// The server's major version.
    async fn major_version(&self) -> Result<u32, StoreError> {
        let v: String = self
            .timed(
                "version",
                self.client.query("SELECT version()").fetch_one::<String>(),
            )
            .await?;
        v.split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| StoreError(format!("clickhouse: unreadable server version {v:?}")))
    }

    pub(super) async fn migrate(&mut self) -> Result<Vec<Migration>, StoreError> {
        let major = self.major_version().await?;
        self.timed(
            "creating kong_looker_migrations",
            self.client
                .query(
                    "CREATE TABLE IF NOT EXISTS kong_looker_migrations
                     (version Int64, name String, applied_at DateTime)
                     ENGINE = ReplacingMergeTree ORDER BY version",
                )
                .execute(),
        )
        .await?;
        let done: Vec<i64> = self
            .timed(
                "reading kong_looker_migrations",
                self.client
                    .query("SELECT DISTINCT version FROM kong_looker_migrations")
                    .fetch_all::<i64>(),
            )
            .await?;
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            if done.contains(&m.version) {
                continue;
            }
            for statement in statements(m.sql) {
                let statement = for_server(&statement, major);
                self.timed(
                    &format!("migration {}", m.name),
                    self.client.query(&statement).execute(),
                )
                .await?;
            }
            self.timed(
                "recording a migration",
                self.client
                    .query("INSERT INTO kong_looker_migrations (version, name, applied_at) SELECT ?, ?, now()")
                    .bind(m.version)
                    .bind(m.name)
                    .execute(),
            )
            .await?;
            applied.push(m);
        }
        self.times = None;
        Ok(applied)
    }

    /// How the request table stores times.
    async fn times(&mut self) -> Result<TimeColumns, StoreError> {
        if let Some(t) = self.times {
            return Ok(t);
        }
        let kind: String = self
            .timed(
                "reading the table's time type",
                self.client
                    .query(
                        "SELECT type FROM system.columns WHERE database = currentDatabase()
                     AND table = 'kong_looker_request_rows' AND name = 'started_at'",
                    )
                    .fetch_one::<String>(),
            )
            .await?;
        let t = if kind.starts_with("DateTime64") {
            TimeColumns::Millis
        } else {
            TimeColumns::Seconds
        };
        self.times = Some(t);
        Ok(t)
    }

    pub(super) async fn commit(&mut self, commit: &Commit<'_>) -> Result<CommitReport, StoreError> {
        let times = self.times().await?;
        let time = |ms: i64| Time { ms, times };
        let now = time(now_ms());
        let mut known = self.known_batches(commit).await?;
        let mut report = CommitReport::default();
        let mut batch_rows = Vec::new();
        let mut dictionary_rows = Vec::new();
        for b in &commit.batches {
            let sequence = clamp(b.batch.sequence);
            let key = (b.instance_id.clone(), sequence);
            if let Some(defs) = &b.definitions {
                dictionary_rows.push(DictionaryRow {
                    instance_id: &b.instance_id,
                    generation: i64::from(b.batch.generation),
                    sequence,
                    definitions: defs,
                });
            }
            if known.get(&key).is_some_and(|k| k.committed) {
                report.inserted.push(false);
                report.abandoned.push(Vec::new());
                continue;
            }
            let d = &b.batch.drops;
            let mut drops: DropCounts = [
                clamp(d.buffer_full),
                clamp(d.dispatch_failed),
                clamp(d.capture_error),
                clamp(d.instance_reset),
            ];
            let producer = |sequence, state, rank, records, drops: DropCounts, cut_at| BatchRow {
                instance_id: &b.instance_id,
                sequence,
                node_id: nonempty(&b.batch.node_id),
                filter_version: nonempty(&b.batch.filter_version),
                kong_version: nonempty(&b.batch.kong_version),
                generation: i64::from(b.batch.generation),
                records,
                drops_buffer_full: drops[0],
                drops_dispatch_failed: drops[1],
                drops_capture_error: drops[2],
                drops_instance_reset: drops[3],
                cut_at,
                received_at: time(b.received_at_ms),
                committed_at: now,
                state,
                state_rank: rank,
            };
            let mut covered = Vec::new();
            for s in abandoned(b.batch) {
                let at = (b.instance_id.clone(), clamp(s));
                match known.get(&at) {
                    Some(k) if k.committed => uncount(&mut drops, k.counts),
                    Some(_) => {}
                    None => {
                        batch_rows.push(producer(clamp(s), "abandoned", 0, 0, [0; 4], None));
                        known.insert(
                            at,
                            Known {
                                committed: false,
                                counts: [0; 5],
                            },
                        );
                        covered.push(s);
                    }
                }
            }
            let records = i32::try_from(b.batch.len()).unwrap_or(i32::MAX);
            let cut_at = (b.batch.cut_time_ms != 0).then(|| time(b.batch.cut_time_ms));
            batch_rows.push(producer(sequence, "committed", 1, records, drops, cut_at));
            known.insert(
                key,
                Known {
                    committed: true,
                    counts: [i64::from(records), drops[0], drops[1], drops[2], drops[3]],
                },
            );
            report.inserted.push(true);
            report.abandoned.push(covered);
        }
        report.log_rows_landed = self.new_log_rows(commit, &report.inserted).await?;
        self.insert_requests(commit, &report.inserted, times)
            .await?;
        if !dictionary_rows.is_empty() {
            let mut insert = self
                .insert::<DictionaryRow<'_>>("kong_looker_dictionary")
                .await?;
            for row in &dictionary_rows {
                self.timed("writing dictionary rows", insert.write(row))
                    .await?;
            }
            self.timed("committing dictionary rows", insert.end())
                .await?;
        }
        // Last: a batch row says the batch is whole.
        if !batch_rows.is_empty() {
            let mut insert = self
                .insert::<BatchRow<'_>>("kong_looker_batch_rows")
                .await?;
            for row in &batch_rows {
                self.timed("writing batch rows", insert.write(row)).await?;
            }
            self.timed("committing batch rows", insert.end()).await?;
        }
        Ok(report)
    }

    async fn insert<T: Row>(
        &self,
        table: &str,
    ) -> Result<clickhouse::insert::Insert<T>, StoreError> {
        let insert = self
            .timed("starting an insert", self.client.insert::<T>(table))
            .await?;
        Ok(insert.with_timeouts(Some(STATEMENT_TIMEOUT), Some(STATEMENT_TIMEOUT)))
    }

    /// Every row of the batches stored now and every http-log row, in one
    /// insert.
    async fn insert_requests(
        &self,
        commit: &Commit<'_>,
        inserted: &[bool],
        times: TimeColumns,
    ) -> Result<(), StoreError> {
        let stored: Vec<_> = commit
            .batches
            .iter()
            .zip(inserted)
            .filter(|(_, s)| **s)
            .map(|(b, _)| b)
            .collect();
        if stored.is_empty() && commit.log_rows.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .insert::<RequestRow<'_>>("kong_looker_request_rows")
            .await?;
        let mut key = String::new();
        for b in stored {
            for (index, row) in b.batch.rows(b.dictionary).map_err(dangling)?.enumerate() {
                let view = RowView::filter(row, &b.instance_id, b.batch.sequence);
                key.clear();
                if row.request_id.is_none() {
                    let _ = write!(key, "b:{}:{}:{index}", b.instance_id, b.batch.sequence);
                }
                let row = RequestRow::new(&view, &key, times);
                self.timed("writing request rows", insert.write(&row))
                    .await?;
            }
        }
        for log in &commit.log_rows {
            let view = log.view();
            key.clear();
            if view.row.request_id.is_none() {
                // Nothing identifies the request: it is stored as often
                // as it is sent, as on the other stores.
                let _ = write!(key, "h:{:032x}", random_id());
            }
            let row = RequestRow::new(&view, &key, times);
            self.timed("writing request rows", insert.write(&row))
                .await?;
        }
        self.timed("committing request rows", insert.end()).await
    }

    /// What the store holds of the group's batches and of the ones they
    /// report abandoned.
    async fn known_batches(
        &self,
        commit: &Commit<'_>,
    ) -> Result<HashMap<(String, i64), Known>, StoreError> {
        let mut instances = HashSet::new();
        let mut sequences = HashSet::new();
        for b in &commit.batches {
            instances.insert(b.instance_id.as_str());
            sequences.insert(clamp(b.batch.sequence));
            sequences.extend(abandoned(b.batch).map(clamp));
        }
        if instances.is_empty() {
            return Ok(HashMap::new());
        }
        let instances: Vec<&str> = instances.into_iter().collect();
        let sequences: Vec<i64> = sequences.into_iter().collect();
        let rows = self
            .timed(
                "reading batches",
                self.client
                    .query(
                        // The table itself, by its key: `IN` a set uses the
                        // primary key where `has` would scan every batch ever
                        // stored, and older servers do not push filters into
                        // the view.
                        "SELECT instance_id, sequence, state = 'committed', toInt64(records),
                            drops_buffer_full, drops_dispatch_failed, drops_capture_error,
                            drops_instance_reset
                     FROM kong_looker_batch_rows FINAL
                     WHERE instance_id IN (SELECT arrayJoin(?))
                       AND sequence IN (SELECT toInt64(arrayJoin(?)))",
                    )
                    .bind(instances)
                    .bind(sequences)
                    .fetch_all::<KnownRow>(),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    (r.instance_id, r.sequence),
                    Known {
                        committed: r.committed == 1,
                        counts: [
                            r.records,
                            r.drops_buffer_full,
                            r.drops_dispatch_failed,
                            r.drops_capture_error,
                            r.drops_instance_reset,
                        ],
                    },
                )
            })
            .collect())
    }

    /// How many of the group's http-log rows land: those whose request no
    /// row has yet (stored, or coming with this commit's batches), or only
    /// rows they outrank.
    async fn new_log_rows(
        &self,
        commit: &Commit<'_>,
        inserted: &[bool],
    ) -> Result<u64, StoreError> {
        let mut incoming: HashMap<String, u32> = HashMap::new();
        let mut unkeyed = 0u64;
        for log in &commit.log_rows {
            let view = log.view();
            match id_text(view.row.request_id) {
                Some(id) => {
                    let v = version(&view);
                    let e = incoming.entry(format!("r:{id}")).or_insert(v);
                    *e = (*e).max(v);
                }
                None => unkeyed += 1,
            }
        }
        if incoming.is_empty() {
            return Ok(unkeyed);
        }
        let keys: Vec<&str> = incoming.keys().map(String::as_str).collect();
        let stored = self
            .timed(
                "reading request keys",
                self.client
                    .query(
                        // By the primary key (the set, not `has`).
                        "SELECT row_key, max(version) FROM kong_looker_request_rows
                     WHERE row_key IN (SELECT arrayJoin(?)) GROUP BY row_key",
                    )
                    .bind(keys)
                    .fetch_all::<(String, u32)>(),
            )
            .await?;
        let mut stored: HashMap<String, u32> = stored.into_iter().collect();
        for (b, _) in commit.batches.iter().zip(inserted).filter(|(_, s)| **s) {
            for row in b.batch.rows(b.dictionary).map_err(dangling)? {
                let Some(id) = id_text(row.request_id) else {
                    continue;
                };
                let key = format!("r:{id}");
                if incoming.contains_key(&key) {
                    let v = version(&RowView::filter(row, &b.instance_id, b.batch.sequence));
                    let e = stored.entry(key).or_insert(v);
                    *e = (*e).max(v);
                }
            }
        }
        let landed = incoming
            .iter()
            .filter(|(k, v)| stored.get(*k).is_none_or(|s| *v > s))
            .count() as u64;
        Ok(landed + unkeyed)
    }

    pub(super) async fn definitions(
        &mut self,
        instance_id: &str,
        generation: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.timed(
            "reading the dictionary",
            self.client
                .query(
                    "SELECT definitions FROM kong_looker_dictionary FINAL
                     WHERE instance_id = ? AND generation = ? ORDER BY sequence",
                )
                .bind(instance_id)
                .bind(i64::from(generation))
                .fetch_all::<Vec<u8>>(),
        )
        .await
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        self.timed(
            "ping",
            self.client
                .query("SELECT count() FROM kong_looker_migrations")
                .fetch_one::<u64>(),
        )
        .await
        .map(drop)
    }

    pub(super) async fn summary(&mut self) -> Result<Summary, StoreError> {
        let s = self.timed(
            "summary",
            self.client
                .query(
                    "SELECT
  (SELECT toInt64(count()) FROM kong_looker_requests),
  (SELECT toInt64(count()) FROM kong_looker_requests WHERE origin = 'filter'),
  (SELECT toInt64(count()) FROM kong_looker_requests WHERE origin = 'http_log'),
  (SELECT toInt64(count()) FROM kong_looker_batches WHERE state = 'committed'),
  (SELECT toInt64(uniqExact(instance_id)) FROM kong_looker_batches WHERE state = 'committed'),
  (SELECT toInt64(sum(m - n)) FROM
     (SELECT max(sequence) AS m, toInt64(count()) AS n FROM kong_looker_batches GROUP BY instance_id)),
  (SELECT toInt64(count()) FROM kong_looker_batches WHERE state = 'abandoned'),
  (SELECT toInt64(sum(drops_buffer_full)) FROM kong_looker_batches),
  (SELECT toInt64(sum(drops_dispatch_failed)) FROM kong_looker_batches),
  (SELECT toInt64(sum(drops_capture_error)) FROM kong_looker_batches),
  (SELECT toInt64(sum(drops_instance_reset)) FROM kong_looker_batches),
  (SELECT toString(max(committed_at)) FROM kong_looker_batches)",
                )
                .fetch_one::<SummaryRow>(),
        )
        .await?;
        Ok(Summary {
            rows: s.rows,
            filter_rows: s.filter_rows,
            http_log_rows: s.http_log_rows,
            batches: s.batches,
            producers: s.producers,
            missing_batches: s.missing_batches,
            abandoned_batches: s.abandoned_batches,
            drops_buffer_full: s.drops_buffer_full,
            drops_dispatch_failed: s.drops_dispatch_failed,
            drops_capture_error: s.drops_capture_error,
            drops_instance_reset: s.drops_instance_reset,
            newest_commit: (s.batches > 0 || s.abandoned_batches > 0)
                .then(|| iso_from_text(&s.newest_commit)),
        })
    }

    pub(super) async fn request_columns(&mut self) -> Result<Vec<String>, StoreError> {
        self.timed(
            "reading columns",
            self.client
                .query(
                    "SELECT name FROM system.columns WHERE database = currentDatabase()
                     AND table = 'kong_looker_requests'",
                )
                .fetch_all::<String>(),
        )
        .await
    }
}

/// A client whose HTTPS trusts only the certificates in the PEM file `ca`
/// (a private CA), with the pool settings of the crate's own client.
fn client_trusting(ca: &str) -> Result<Client, StoreError> {
    use hyper_util::client::legacy::connect::HttpConnector;
    let bad = |why: String| StoreError(format!("clickhouse: ca_file {ca}: {why}"));
    let pem = std::fs::read(ca).map_err(|e| bad(e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    let pool = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(2))
        .build(https);
    Ok(Client::with_http_client(pool))
}

/// A migration's statements: split at `;`, whole-line comments dropped
/// (the files keep `;` out of strings and comments).
pub fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A statement as a server of `major` version takes it. Before 20.1 there
/// is no `DateTime64`, so times are whole seconds; and `LowCardinality`
/// is experimental there (behind a setting) and costs about 40% of the
/// insert rate (bench/RESULTS.md), so texts are plain `String`s.
pub fn for_server(statement: &str, major: u32) -> String {
    if major < 20 {
        statement
            .replace("DateTime64(3, 'UTC')", "DateTime('UTC')")
            .replace("LowCardinality(Nullable(String))", "Nullable(String)")
            .replace("LowCardinality(String)", "String")
    } else {
        statement.to_owned()
    }
}

/// A 128-bit id unique to this call: the key of an http-log row that
/// nothing identifies. A process-wide count makes it unique here; a
/// randomly seeded hash of it and the time, across collectors.
fn random_id() -> u128 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let hi = foldhash::fast::RandomState::default().hash_one((now_ms(), n));
    (u128::from(hi) << 64) | u128::from(n)
}

/// A stored batch, as far as a commit needs it.
struct Known {
    committed: bool,
    /// Records and drops, as [`uncount`] takes them.
    counts: [i64; 5],
}

#[derive(Row, Deserialize)]
struct KnownRow {
    instance_id: String,
    sequence: i64,
    committed: u8,
    records: i64,
    drops_buffer_full: i64,
    drops_dispatch_failed: i64,
    drops_capture_error: i64,
    drops_instance_reset: i64,
}

#[derive(Row, Deserialize)]
struct SummaryRow {
    rows: i64,
    filter_rows: i64,
    http_log_rows: i64,
    batches: i64,
    producers: i64,
    missing_batches: i64,
    abandoned_batches: i64,
    drops_buffer_full: i64,
    drops_dispatch_failed: i64,
    drops_capture_error: i64,
    drops_instance_reset: i64,
    newest_commit: String,
}

/// `2026-12-02 13:01:25.123` (or without ms) as ISO 8601 UTC with ms.
fn iso_from_text(t: &str) -> String {
    let (whole, ms) = t.split_once('.').unwrap_or((t, "000"));
    format!("{}.{ms:0<3.3}Z", whole.replacen(' ', "T", 1))
}

/// A time in the table's unit.
#[derive(Clone, Copy, Debug)]
struct Time {
    ms: i64,
    times: TimeColumns,
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.times {
            TimeColumns::Millis => s.serialize_i64(self.ms),
            TimeColumns::Seconds => {
                s.serialize_u32(u32::try_from(self.ms.div_euclid(1000)).unwrap_or(0))
            }
        }
    }
}

/// `String` columns holding bytes.
fn bytes<S: Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(b)
}

#[derive(Row, Serialize)]
struct DictionaryRow<'a> {
    instance_id: &'a str,
    generation: i64,
    sequence: i64,
    #[serde(serialize_with = "bytes")]
    definitions: &'a [u8],
}

#[derive(Row, Serialize)]
struct BatchRow<'a> {
    instance_id: &'a str,
    sequence: i64,
    node_id: Option<&'a str>,
    filter_version: Option<&'a str>,
    kong_version: Option<&'a str>,
    generation: i64,
    records: i32,
    drops_buffer_full: i64,
    drops_dispatch_failed: i64,
    drops_capture_error: i64,
    drops_instance_reset: i64,
    cut_at: Option<Time>,
    received_at: Time,
    committed_at: Time,
    state: &'static str,
    state_rank: u8,
}

/// The rank of a row among those with its key ([`RequestRow::version`]):
/// AI figures of more LLM calls first (any figures before none), so the AI
/// dashboard keeps tokens, cost and guardrail blocks whichever path saw
/// them; then what the other stores' merge ranks by (the row knowing more
/// of the request); then the filter's.
fn version(v: &RowView<'_>) -> u32 {
    let r = &v.row;
    let known = [
        r.method.is_some(),
        r.host.is_some(),
        r.route_id.is_some() || r.route_name.is_some(),
        r.service_id.is_some() || r.service_name.is_some(),
        r.auth_method.is_some(),
        r.agent_category.is_some(),
        r.path.is_some(),
    ]
    .iter()
    .filter(|k| **k)
    .count() as u32;
    // Any AI figures (even of no calls: a guardrail block) outrank none.
    let calls = r.ai_calls.map_or(0, |c| c.saturating_add(1)).min(0xFFFF);
    let filter = u32::from(v.origin == crate::row::Origin::Filter);
    (calls << 4) | (known << 1) | filter
}

/// One request row in table order, `row_key` and `version` last.
#[derive(Row, Serialize)]
struct RequestRow<'a> {
    started_at: Time,
    workspace: Option<&'a str>,
    route_id: Option<&'a str>,
    route_name: Option<&'a str>,
    service_id: Option<&'a str>,
    service_name: Option<&'a str>,
    method: Option<&'a str>,
    host: Option<&'a str>,
    path: Option<&'a str>,
    status: Option<i32>,
    response_source: Option<&'a str>,
    latency_total_us: i64,
    latency_upstream_us: Option<i64>,
    request_bytes: i64,
    response_bytes: i64,
    auth_method: Option<&'a str>,
    trust: Option<&'a str>,
    anonymous: u8,
    consumer_id: Option<&'a str>,
    consumer_username: Option<&'a str>,
    consumer_custom_id: Option<&'a str>,
    credential: Option<&'a str>,
    consumer_groups: Option<Cow<'a, str>>,
    subject: Option<&'a str>,
    issuer: Option<&'a str>,
    client_id: Option<&'a str>,
    client_address: Option<&'a str>,
    agent_category: Option<&'a str>,
    agent_name: Option<&'a str>,
    request_id: Option<String>,
    trace_id: Option<String>,
    sample_weight: f64,
    origin: &'static str,
    instance_id: Option<&'a str>,
    batch_sequence: Option<i64>,
    ai_provider: Option<&'a str>,
    ai_request_model: Option<&'a str>,
    ai_response_model: Option<&'a str>,
    ai_request_mode: Option<&'a str>,
    ai_prompt_tokens: Option<i64>,
    ai_completion_tokens: Option<i64>,
    ai_total_tokens: Option<i64>,
    ai_cost_micros: Option<i64>,
    ai_llm_latency_ms: Option<i64>,
    ai_time_to_first_token_ms: Option<i64>,
    ai_cache_status: Option<&'a str>,
    ai_cache_fetch_latency_ms: Option<i64>,
    ai_embeddings_model: Option<&'a str>,
    ai_guardrail_blocks: Option<i32>,
    ai_guardrail: Option<&'a str>,
    ai_mcp_tool_calls: Option<i32>,
    ai_mcp_tool: Option<&'a str>,
    ai_calls: Option<i32>,
    ai_unreadable: Option<i32>,
    /// `r:` and the request id, or `key` (see the migration).
    row_key: Cow<'a, str>,
    version: u32,
}

impl<'a> RequestRow<'a> {
    fn new(v: &'a RowView<'a>, key: &'a str, times: TimeColumns) -> Self {
        let r = &v.row;
        let count = |n: Option<u32>| n.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let request_id = id_text(r.request_id);
        let row_key = match &request_id {
            Some(id) => Cow::Owned(format!("r:{id}")),
            None => Cow::Borrowed(key),
        };
        RequestRow {
            started_at: Time {
                ms: r.started_at_ms,
                times,
            },
            workspace: r.workspace,
            route_id: r.route_id,
            route_name: r.route_name,
            service_id: r.service_id,
            service_name: r.service_name,
            method: r.method,
            host: r.host,
            path: r.path,
            status: r.status.map(i32::from),
            response_source: r.response_source,
            latency_total_us: clamp(r.latency_total_us),
            latency_upstream_us: r.latency_upstream_us.map(clamp),
            request_bytes: clamp(r.request_bytes),
            response_bytes: clamp(r.response_bytes),
            auth_method: r.auth_method,
            trust: r.trust,
            anonymous: u8::from(r.anonymous),
            consumer_id: r.consumer_id,
            consumer_username: r.consumer_username,
            consumer_custom_id: r.consumer_custom_id,
            credential: r.credential,
            consumer_groups: v.groups.joined(),
            subject: r.subject,
            issuer: r.issuer,
            client_id: r.client_id,
            client_address: r.client_address,
            agent_category: r.agent_category,
            agent_name: r.agent_name,
            request_id,
            trace_id: id_text(r.trace_id),
            sample_weight: f64::from(r.sample_weight),
            origin: v.origin.name(),
            instance_id: v.instance_id,
            batch_sequence: v.batch_sequence.map(clamp),
            ai_provider: r.ai_provider,
            ai_request_model: r.ai_request_model,
            ai_response_model: r.ai_response_model,
            ai_request_mode: r.ai_request_mode,
            ai_prompt_tokens: r.ai_prompt_tokens.map(clamp),
            ai_completion_tokens: r.ai_completion_tokens.map(clamp),
            ai_total_tokens: r.ai_total_tokens.map(clamp),
            ai_cost_micros: r.ai_cost_micros.map(clamp),
            ai_llm_latency_ms: r.ai_llm_latency_ms.map(clamp),
            ai_time_to_first_token_ms: r.ai_time_to_first_token_ms.map(clamp),
            ai_cache_status: r.ai_cache_status,
            ai_cache_fetch_latency_ms: r.ai_cache_fetch_latency_ms.map(clamp),
            ai_embeddings_model: r.ai_embeddings_model,
            ai_guardrail_blocks: count(r.ai_guardrail_blocks),
            ai_guardrail: r.ai_guardrail,
            ai_mcp_tool_calls: count(r.ai_mcp_tool_calls),
            ai_mcp_tool: r.ai_mcp_tool,
            ai_calls: count(r.ai_calls),
            ai_unreadable: count(r.ai_unreadable),
            row_key,
            version: version(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_defaults_settings_and_tls() {
        let u = ChUrl::parse("clickhouse://looker:p%40ss@ch.internal/kong").unwrap();
        assert_eq!(u.endpoint, "http://ch.internal:8123");
        assert_eq!((u.user.as_str(), u.password.as_str()), ("looker", "p@ss"));
        assert_eq!(u.database, "kong");
        assert_eq!(
            u.to_string(),
            "clickhouse://looker:***@ch.internal:8123/kong"
        );
        let u = ChUrl::parse("clickhouse://ch:9440?secure=true&insert_quorum=2").unwrap();
        assert_eq!(u.endpoint, "https://ch:9440");
        assert_eq!(
            (u.user.as_str(), u.database.as_str()),
            ("default", "default")
        );
        assert_eq!(u.settings, [("insert_quorum".into(), "2".into())]);
        assert_eq!(u.ca_file, None);
        assert_eq!(
            u.to_string(),
            "clickhouse://default@ch:9440/default?secure=true&insert_quorum=2"
        );
        let u = ChUrl::parse("clickhouse://ch/db?secure=true&ca_file=/etc/ca.pem").unwrap();
        assert_eq!(u.ca_file.as_deref(), Some("/etc/ca.pem"));
        assert!(u.settings.is_empty());
        assert_eq!(
            u.to_string(),
            "clickhouse://default@ch:8443/db?secure=true&ca_file=%2Fetc%2Fca.pem"
        );
        let u = ChUrl::parse("clickhouse://a%40b:pw@h/d%20b").unwrap();
        assert_eq!((u.user.as_str(), u.database.as_str()), ("a@b", "d b"));
        let again = ChUrl::parse(&u.to_string().replace(":***", "")).unwrap();
        assert_eq!((again.user, again.database), (u.user, u.database));
        assert_eq!(
            ChUrl::parse("clickhouse://[::1]/").unwrap().endpoint,
            "http://[::1]:8123"
        );
        for (bad, says) in [
            ("clickhouse:///db", "needs a host"),
            ("clickhouse://h/a/b", "one database name"),
            ("clickhouse://h/db?secure=yes", "secure=yes"),
            ("clickhouse://h/db?x%3By=1", "not a ClickHouse setting"),
            ("http://h/db", "starts with clickhouse://"),
            ("clickhouse://h/db?ca_file=/x.pem", "add secure=true"),
        ] {
            let e = ChUrl::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn statements_split_and_old_servers_get_seconds() {
        let s = statements(
            "-- a; comment\nCREATE TABLE t (a DateTime64(3, 'UTC'));\n\n-- b\nSELECT 1;\n",
        );
        assert_eq!(s, ["CREATE TABLE t (a DateTime64(3, 'UTC'))", "SELECT 1"]);
        assert_eq!(for_server(&s[0], 18), "CREATE TABLE t (a DateTime('UTC'))");
        assert_eq!(for_server(&s[0], 25), s[0]);
        let texts = "b LowCardinality(Nullable(String)), c LowCardinality(String)";
        assert_eq!(for_server(texts, 19), "b Nullable(String), c String");
        assert_eq!(for_server(texts, 20), texts);
    }

    #[test]
    fn server_times_read_as_iso() {
        assert_eq!(
            iso_from_text("2026-12-02 13:01:25.12"),
            "2026-12-02T13:01:25.120Z"
        );
        assert_eq!(
            iso_from_text("2026-12-02 13:01:25"),
            "2026-12-02T13:01:25.000Z"
        );
    }
}
