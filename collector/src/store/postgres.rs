//! The PostgreSQL store, the one Looker reads. Rows go in with binary
//! `COPY`: straight into the table when they carry no request id (nothing
//! can conflict), and through a session-local staging table when they do,
//! so an idempotent `INSERT … ON CONFLICT` can let the richer of the
//! filter's and http-log's rows for a request replace the other. Connections come from a pool, so a
//! restarted server costs one failed commit, answered 503, and no restart.

use std::pin::pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Transaction};

use super::{
    BATCH_COLUMNS, BATCH_REPLACES_NOTICE, COMMITTED_COUNTS, Commit, CommitReport, DropCounts,
    Migration, SET_DROPS, StoreError, Summary, abandoned, ai_fills, clamp, dangling,
    known_fields_sql, merge_set, nonempty, placeholders, uncount,
};
use crate::row::{REQUEST_COLUMNS, RowView, id_text};

/// Migrations, in order. (Each store lists its own files; the lists look
/// alike because they are data.)
pub const MIGRATIONS: [Migration; 3] = [
    Migration {
        version: 1,
        name: "0001_tables.sql",
        sql: include_str!("migrations/postgres/0001_tables.sql"),
    },
    Migration {
        version: 2,
        name: "0002_abandoned_batches.sql",
        sql: include_str!("migrations/postgres/0002_abandoned_batches.sql"),
    },
    Migration {
        version: 3,
        name: "0003_ai_usage.sql",
        sql: include_str!("migrations/postgres/0003_ai_usage.sql"),
    },
];

/// The column types of `kong_looker_requests`, in [`REQUEST_COLUMNS`] order.
pub const TYPES: [Type; 54] = [
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::FLOAT8,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::INT4,
    Type::TEXT,
    Type::INT4,
    Type::INT4,
];

/// Rows with a request id wait here until the idempotent insert. Temporary,
/// so each pooled session has its own, and emptied at every commit.
const STAGING_DDL: &str = "CREATE TEMP TABLE IF NOT EXISTS kong_looker_staging
    (LIKE kong_looker_requests) ON COMMIT DELETE ROWS";

/// A PostgreSQL store: a small connection pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: Pool,
}

impl PgStore {
    /// A pool for `url`; connects lazily.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError(format!("postgres: bad URL: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(4)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(5)))
            .wait_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError(format!("postgres: {e}")))?;
        Ok(PgStore { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError(format!("postgres: {}", super::chain(&e))))
    }

    pub(super) async fn migrate(&mut self) -> Result<Vec<Migration>, StoreError> {
        let mut client = self.client().await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS kong_looker_migrations (
                     version bigint PRIMARY KEY, name text NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now())",
            )
            .await?;
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            let tx = client.transaction().await?;
            // Two collectors starting together must not both migrate.
            tx.execute("SELECT pg_advisory_xact_lock(7275687)", &[])
                .await?;
            let done = tx
                .query_opt(
                    "SELECT 1 FROM kong_looker_migrations WHERE version = $1",
                    &[&m.version],
                )
                .await?;
            if done.is_none() {
                tx.batch_execute(m.sql).await.map_err(|e| {
                    StoreError(format!(
                        "postgres: migration {}: {}",
                        m.name,
                        super::chain(&e)
                    ))
                })?;
                tx.execute(
                    "INSERT INTO kong_looker_migrations (version, name) VALUES ($1, $2)",
                    &[&m.version, &m.name],
                )
                .await?;
                applied.push(m);
            }
            tx.commit().await?;
        }
        Ok(applied)
    }

    pub(super) async fn commit(&mut self, commit: &Commit<'_>) -> Result<CommitReport, StoreError> {
        let mut client = self.client().await?;
        client.batch_execute(STAGING_DDL).await?;
        let tx = client.transaction().await?;
        let mut report = CommitReport::default();
        // A batch lands once; on the row of a notice that it had been
        // abandoned, it takes the row over.
        let batch_stmt = tx
            .prepare_cached(&format!(
                "INSERT INTO kong_looker_batches ({BATCH_COLUMNS}) VALUES
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now(), 'committed')
                 {BATCH_REPLACES_NOTICE}"
            ))
            .await?;
        // A notice lands only on a sequence number nothing covers yet.
        let notice_stmt = tx
            .prepare_cached(&format!(
                "INSERT INTO kong_looker_batches ({BATCH_COLUMNS}) VALUES
                 ($1, $2, $3, $4, $5, $6, 0, 0, 0, 0, 0, NULL, $7, now(), 'abandoned')
                 ON CONFLICT DO NOTHING"
            ))
            .await?;
        let dict_stmt = tx
            .prepare_cached(
                "INSERT INTO kong_looker_dictionary (instance_id, generation, definitions)
                 VALUES ($1, $2, $3)",
            )
            .await?;
        let committed_stmt = tx
            .prepare_cached(&placeholders(COMMITTED_COUNTS, '$'))
            .await?;
        let drops_stmt = tx.prepare_cached(&placeholders(SET_DROPS, '$')).await?;
        for b in &commit.batches {
            let d = &b.batch.drops;
            let cut_at = (b.batch.cut_time_ms != 0).then(|| system_time(b.batch.cut_time_ms));
            let stored = tx
                .execute(
                    &batch_stmt,
                    &[
                        &b.instance_id,
                        &clamp(b.batch.sequence),
                        &nonempty(&b.batch.node_id),
                        &nonempty(&b.batch.filter_version),
                        &nonempty(&b.batch.kong_version),
                        &i64::from(b.batch.generation),
                        &i32::try_from(b.batch.len()).unwrap_or(i32::MAX),
                        &clamp(d.buffer_full),
                        &clamp(d.dispatch_failed),
                        &clamp(d.capture_error),
                        &clamp(d.instance_reset),
                        &cut_at,
                        &system_time(b.received_at_ms),
                    ],
                )
                .await?
                == 1;
            if let Some(defs) = &b.definitions {
                tx.execute(
                    &dict_stmt,
                    &[&b.instance_id, &i64::from(b.batch.generation), defs],
                )
                .await?;
            }
            report.inserted.push(stored);
            let mut covered = Vec::new();
            if stored {
                let mut drops: DropCounts = [
                    clamp(d.buffer_full),
                    clamp(d.dispatch_failed),
                    clamp(d.capture_error),
                    clamp(d.instance_reset),
                ];
                let mut uncounted = false;
                for sequence in abandoned(b.batch) {
                    let found = tx
                        .query_opt(&committed_stmt, &[&b.instance_id, &clamp(sequence)])
                        .await?;
                    if let Some(r) = found {
                        let records: i32 = r.try_get(0)?;
                        uncount(
                            &mut drops,
                            [
                                i64::from(records),
                                r.try_get(1)?,
                                r.try_get(2)?,
                                r.try_get(3)?,
                                r.try_get(4)?,
                            ],
                        );
                        uncounted = true;
                        continue;
                    }
                    let landed = tx
                        .execute(
                            &notice_stmt,
                            &[
                                &b.instance_id,
                                &clamp(sequence),
                                &nonempty(&b.batch.node_id),
                                &nonempty(&b.batch.filter_version),
                                &nonempty(&b.batch.kong_version),
                                &i64::from(b.batch.generation),
                                &system_time(b.received_at_ms),
                            ],
                        )
                        .await?;
                    if landed == 1 {
                        covered.push(sequence);
                    }
                }
                if uncounted {
                    tx.execute(
                        &drops_stmt,
                        &[
                            &drops[0],
                            &drops[1],
                            &drops[2],
                            &drops[3],
                            &b.instance_id,
                            &clamp(b.batch.sequence),
                        ],
                    )
                    .await?;
                }
            }
            report.abandoned.push(covered);
        }
        // Every row of the stored batches, in two passes: those without a
        // request id go straight in; the rest through staging.
        let stored = || {
            commit
                .batches
                .iter()
                .zip(&report.inserted)
                .filter(|(_, stored)| **stored)
                .map(|(b, _)| b)
        };
        let mut keyed = commit.log_rows.len();
        {
            let sink = tx.copy_in(&copy_sql("kong_looker_requests")).await?;
            let mut writer = pin!(BinaryCopyInWriter::new(sink, &TYPES));
            for b in stored() {
                for row in b.batch.rows(b.dictionary).map_err(dangling)? {
                    if row.request_id.is_some() {
                        keyed += 1;
                        continue;
                    }
                    let view = RowView::filter(row, &b.instance_id, b.batch.sequence);
                    write_row(writer.as_mut(), &view).await?;
                }
            }
            writer.finish().await?;
        }
        if keyed > 0 {
            {
                let sink = tx.copy_in(&copy_sql("kong_looker_staging")).await?;
                let mut writer = pin!(BinaryCopyInWriter::new(sink, &TYPES));
                for b in stored() {
                    for row in b.batch.rows(b.dictionary).map_err(dangling)? {
                        if row.request_id.is_some() {
                            let view = RowView::filter(row, &b.instance_id, b.batch.sequence);
                            write_row(writer.as_mut(), &view).await?;
                        }
                    }
                }
                for row in &commit.log_rows {
                    write_row(writer.as_mut(), &row.view()).await?;
                }
                writer.finish().await?;
            }
            report.log_rows_landed = merge_staging(&tx).await?;
        }
        tx.commit().await?;
        Ok(report)
    }

    pub(super) async fn definitions(
        &mut self,
        instance_id: &str,
        generation: u32,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT definitions FROM kong_looker_dictionary
                 WHERE instance_id = $1 AND generation = $2 ORDER BY id",
                &[&instance_id, &i64::from(generation)],
            )
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .query_one("SELECT count(*) FROM kong_looker_migrations", &[])
            .await?;
        Ok(())
    }

    pub(super) async fn summary(&mut self) -> Result<Summary, StoreError> {
        let client = self.client().await?;
        let r = client
            .query_one(&super::summary_sql(super::ROW_COUNTS_SQL), &[])
            .await?;
        let newest = client
            .query_one(
                "SELECT to_char(max(committed_at) AT TIME ZONE 'UTC',
                                'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')
                 FROM kong_looker_batches",
                &[],
            )
            .await?;
        Ok(Summary {
            rows: r.try_get(0)?,
            filter_rows: r.try_get(1)?,
            http_log_rows: r.try_get(2)?,
            batches: r.try_get(3)?,
            producers: r.try_get(4)?,
            missing_batches: r.try_get(5)?,
            abandoned_batches: r.try_get(6)?,
            drops_buffer_full: r.try_get(7)?,
            drops_dispatch_failed: r.try_get(8)?,
            drops_capture_error: r.try_get(9)?,
            drops_instance_reset: r.try_get(10)?,
            newest_commit: newest.try_get(0)?,
        })
    }

    pub(super) async fn request_columns(&mut self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = 'kong_looker_requests'
                 ORDER BY ordinal_position",
                &[],
            )
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

/// Moves staged rows into the table, one per request id: of the filter's
/// row and http-log's, the one that knows more of what the request was
/// wins ([`known_fields_sql`]), the filter's on a tie, whichever arrives
/// first. A row never replaces one from its own path (a retry). Returns the
/// http-log rows that landed.
async fn merge_staging(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let cols = REQUEST_COLUMNS.join(", ");
    let table = "kong_looker_requests";
    let (new, old) = (known_fields_sql("excluded"), known_fields_sql(table));
    let wins = format!("({new} > {old} OR ({new} = {old} AND excluded.origin = 'filter'))");
    let set = merge_set(&REQUEST_COLUMNS, table, &wins);
    // DISTINCT ON keeps one row per id, the one that would win (on a tie
    // 'filter' sorts before 'http_log'): one INSERT may not touch the same
    // conflicting row twice.
    let sql = format!(
        "INSERT INTO {table} ({cols})
         SELECT DISTINCT ON (request_id) {cols} FROM kong_looker_staging AS s
         ORDER BY request_id, {} DESC, origin
         ON CONFLICT (request_id) WHERE request_id IS NOT NULL
         DO UPDATE SET {set}
         WHERE {table}.origin <> excluded.origin AND ({wins} OR {})
         RETURNING origin = 'http_log'",
        known_fields_sql("s"),
        ai_fills(table),
    );
    let rows = tx.query(&sql, &[]).await?;
    Ok(rows
        .iter()
        .filter(|r| r.try_get::<_, bool>(0).unwrap_or(false))
        .count() as u64)
}

fn copy_sql(table: &str) -> String {
    format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        REQUEST_COLUMNS.join(", ")
    )
}

/// Writes one row to a binary `COPY`.
pub async fn write_row(
    writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    v: &RowView<'_>,
) -> Result<(), StoreError> {
    let r = &v.row;
    let groups = v.groups.joined();
    let status = r.status.map(i32::from);
    let upstream = r.latency_upstream_us.map(clamp);
    let request_id = id_text(r.request_id);
    let trace_id = id_text(r.trace_id);
    let sequence = v.batch_sequence.map(clamp);
    let ai_prompt_tokens = r.ai_prompt_tokens.map(clamp);
    let ai_completion_tokens = r.ai_completion_tokens.map(clamp);
    let ai_total_tokens = r.ai_total_tokens.map(clamp);
    let ai_cost_micros = r.ai_cost_micros.map(clamp);
    let ai_llm_latency_ms = r.ai_llm_latency_ms.map(clamp);
    let ai_time_to_first_token_ms = r.ai_time_to_first_token_ms.map(clamp);
    let ai_cache_fetch_latency_ms = r.ai_cache_fetch_latency_ms.map(clamp);
    let ai_guardrail_blocks = r.ai_guardrail_blocks.map(count);
    let ai_mcp_tool_calls = r.ai_mcp_tool_calls.map(count);
    let ai_calls = r.ai_calls.map(count);
    let ai_unreadable = r.ai_unreadable.map(count);
    let values: [&(dyn ToSql + Sync); 54] = [
        &system_time(r.started_at_ms),
        &r.workspace,
        &r.route_id,
        &r.route_name,
        &r.service_id,
        &r.service_name,
        &r.method,
        &r.host,
        &r.path,
        &status,
        &r.response_source,
        &clamp(r.latency_total_us),
        &upstream,
        &clamp(r.request_bytes),
        &clamp(r.response_bytes),
        &r.auth_method,
        &r.trust,
        &r.anonymous,
        &r.consumer_id,
        &r.consumer_username,
        &r.consumer_custom_id,
        &r.credential,
        &groups.as_deref(),
        &r.subject,
        &r.issuer,
        &r.client_id,
        &r.client_address,
        &r.agent_category,
        &r.agent_name,
        &request_id,
        &trace_id,
        &f64::from(r.sample_weight),
        &v.origin.name(),
        &v.instance_id,
        &sequence,
        &r.ai_provider,
        &r.ai_request_model,
        &r.ai_response_model,
        &r.ai_request_mode,
        &ai_prompt_tokens,
        &ai_completion_tokens,
        &ai_total_tokens,
        &ai_cost_micros,
        &ai_llm_latency_ms,
        &ai_time_to_first_token_ms,
        &r.ai_cache_status,
        &ai_cache_fetch_latency_ms,
        &r.ai_embeddings_model,
        &ai_guardrail_blocks,
        &r.ai_guardrail,
        &ai_mcp_tool_calls,
        &r.ai_mcp_tool,
        &ai_calls,
        &ai_unreadable,
    ];
    writer.write(&values).await?;
    Ok(())
}

/// An AI count as the `integer` column holds it (the schema bounds it far
/// below).
fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
