-- kong-looker tables on ClickHouse, for installs that outgrow one
-- PostgreSQL machine. Same columns and names as the collector's tables,
-- so the LookML runs unchanged (its ClickHouse branches are picked by
-- Liquid on the connection's dialect). Tested by looker/tests in chdb,
-- ClickHouse's own engine in-process.
--
-- The collector writes PostgreSQL or SQLite, not ClickHouse: load these
-- tables from PostgreSQL (e.g. the PostgreSQL table engine, or
-- INSERT INTO ... SELECT * FROM postgresql(...) on a schedule) keyed on
-- started_at, or from your log pipeline.
--
-- Looker connection: dialect "ClickHouse"; times are DateTime64(3, 'UTC'),
-- so set the connection's Database Time Zone to UTC.

CREATE TABLE kong_looker_requests
(
    started_at          DateTime64(3, 'UTC'),
    workspace           LowCardinality(Nullable(String)),
    route_id            Nullable(String),
    route_name          LowCardinality(Nullable(String)),
    service_id          Nullable(String),
    service_name        LowCardinality(Nullable(String)),
    method              LowCardinality(Nullable(String)),
    host                LowCardinality(Nullable(String)),
    path                Nullable(String),
    status              Nullable(Int32),
    response_source     LowCardinality(Nullable(String)),
    latency_total_us    Int64,
    latency_upstream_us Nullable(Int64),
    request_bytes       Int64,
    response_bytes      Int64,
    auth_method         LowCardinality(Nullable(String)),
    trust               LowCardinality(Nullable(String)),
    anonymous           Bool,
    consumer_id         Nullable(String),
    consumer_username   Nullable(String),
    consumer_custom_id  Nullable(String),
    credential          Nullable(String),
    consumer_groups     Nullable(String),
    subject             Nullable(String),
    issuer              LowCardinality(Nullable(String)),
    client_id           Nullable(String),
    client_address      Nullable(String),
    agent_category      LowCardinality(Nullable(String)),
    agent_name          LowCardinality(Nullable(String)),
    request_id          Nullable(String),
    trace_id            Nullable(String),
    sample_weight       Float64,
    origin              LowCardinality(String),
    instance_id         Nullable(String),
    batch_sequence      Nullable(Int64),
    -- AI Gateway figures (NULL without them); cost in millionths of the
    -- price unit configured in Kong (micro-USD for dollar prices).
    ai_provider         LowCardinality(Nullable(String)),
    ai_request_model    LowCardinality(Nullable(String)),
    ai_response_model   LowCardinality(Nullable(String)),
    ai_request_mode     LowCardinality(Nullable(String)),
    ai_prompt_tokens    Nullable(Int64),
    ai_completion_tokens Nullable(Int64),
    ai_total_tokens     Nullable(Int64),
    ai_cost_micros      Nullable(Int64),
    ai_llm_latency_ms   Nullable(Int64),
    ai_time_to_first_token_ms Nullable(Int64),
    ai_cache_status     LowCardinality(Nullable(String)),
    ai_cache_fetch_latency_ms Nullable(Int64),
    ai_embeddings_model LowCardinality(Nullable(String)),
    ai_guardrail_blocks Nullable(Int32),
    ai_guardrail        LowCardinality(Nullable(String)),
    ai_mcp_tool_calls   Nullable(Int32),
    ai_mcp_tool         LowCardinality(Nullable(String)),
    ai_calls            Nullable(Int32),
    ai_unreadable       Nullable(Int32)
)
ENGINE = MergeTree
-- One partition per day: retention is ALTER TABLE ... DROP PARTITION, and
-- Looker's time filters prune whole days.
PARTITION BY toDate(started_at)
-- Order key: the time range comes first because every explore filters on
-- it; add workspace before it if most users are team-filtered
-- (ORDER BY (workspace, started_at) with allow_nullable_key, or a
-- non-Nullable workspace defaulting to '').
ORDER BY started_at
-- Rows are immutable; a request id landing twice (filter and http-log)
-- should be deduplicated on load, or use ReplacingMergeTree ordered by
-- request_id and query with FINAL.
TTL toDateTime(started_at) + INTERVAL 400 DAY;

-- Kept small (one row per 1,000 requests), so no partitioning is needed.
CREATE TABLE kong_looker_batches
(
    instance_id           String,
    sequence              Int64,
    node_id               LowCardinality(Nullable(String)),
    filter_version        LowCardinality(Nullable(String)),
    kong_version          LowCardinality(Nullable(String)),
    generation            Int64,
    records               Int32,
    drops_buffer_full     Int64,
    drops_dispatch_failed Int64,
    drops_capture_error   Int64,
    drops_instance_reset  Int64,
    cut_at                Nullable(DateTime64(3, 'UTC')),
    received_at           DateTime64(3, 'UTC'),
    committed_at          DateTime64(3, 'UTC'),
    -- 'committed', or 'abandoned': a batch its producer reported giving up
    -- on. A batch that arrives after its notice replaces the notice's row,
    -- so load a changed row again and it collapses to the newer one.
    state                 LowCardinality(String) DEFAULT 'committed'
)
ENGINE = ReplacingMergeTree
-- (instance_id, sequence) is the batch's key: a batch loaded twice
-- collapses to one row.
ORDER BY (instance_id, sequence);
