-- kong-looker tables on PostgreSQL 9.5+ (Cloud SQL, AlloyDB, RDS, Aurora):
-- the tables the Looker project reads, exactly as the collector's
-- migrations leave them (collector/src/store/migrations/postgres/:
-- 0001_tables.sql, 0002_abandoned_batches.sql, then 0003_ai_usage.sql; looker/tests checks
-- that they match). The collector creates them itself, on start or with
-- `kong-looker-collector migrate`, together with its internal tables; this
-- file is the reference for reviewers and for copies of the tables kept
-- elsewhere. Tested by looker/tests.
--
-- Looker connection: dialect "PostgreSQL 9.5+", Database Time Zone UTC
-- (times are timestamptz), a read-only user with SELECT on both tables,
-- and a scratch schema if aggregate tables (PDTs) are wanted.

CREATE TABLE kong_looker_requests (
    started_at          timestamptz      NOT NULL,
    workspace           text,
    route_id            text,
    route_name          text,
    service_id          text,
    service_name        text,
    method              text,
    host                text,
    path                text,
    status              integer,
    response_source     text,
    latency_total_us    bigint           NOT NULL,
    latency_upstream_us bigint,
    request_bytes       bigint           NOT NULL,
    response_bytes      bigint           NOT NULL,
    auth_method         text,
    trust               text,
    anonymous           boolean          NOT NULL,
    consumer_id         text,
    consumer_username   text,
    consumer_custom_id  text,
    credential          text,
    consumer_groups     text,
    subject             text,
    issuer              text,
    client_id           text,
    client_address      text,
    agent_category      text,
    agent_name          text,
    request_id          text,
    trace_id            text,
    sample_weight       double precision NOT NULL,
    origin              text             NOT NULL,
    instance_id         text,
    batch_sequence      bigint,
    -- AI Gateway figures (NULL without them); cost in millionths of the
    -- price unit configured in Kong (micro-USD for dollar prices).
    ai_provider         text,
    ai_request_model    text,
    ai_response_model   text,
    ai_request_mode     text,
    ai_prompt_tokens    bigint,
    ai_completion_tokens bigint,
    ai_total_tokens     bigint,
    ai_cost_micros      bigint,
    ai_llm_latency_ms   bigint,
    ai_time_to_first_token_ms bigint,
    ai_cache_status     text,
    ai_cache_fetch_latency_ms bigint,
    ai_embeddings_model text,
    ai_guardrail_blocks integer,
    ai_guardrail        text,
    ai_mcp_tool_calls   integer,
    ai_mcp_tool         text,
    ai_calls            integer,
    ai_unreadable       integer
);

-- Every explore filters on started_at (always_filter: 7 days), and this
-- index serves those ranges.
CREATE INDEX kong_looker_requests_started_at ON kong_looker_requests (started_at);
-- The collector's dedup key: a request seen by both the filter and
-- http-log lands once.
CREATE UNIQUE INDEX kong_looker_requests_request_id
    ON kong_looker_requests (request_id) WHERE request_id IS NOT NULL;

-- Growth advice:
-- * Rows arrive in started_at order (roughly), so a BRIN index is tiny and
--   fast for time ranges once the table passes ~100 million rows:
--     CREATE INDEX kong_looker_requests_started_brin
--         ON kong_looker_requests USING brin (started_at);
-- * Declarative partitioning by range on started_at (daily) makes retention
--   a DROP of old partitions, but PostgreSQL cannot keep the unique index
--   on request_id alone on a partitioned table, and the collector relies on
--   it. Partition a copy that Looker reads instead, or move to ClickHouse,
--   BigQuery or Snowflake (see the other files here).
-- * Retention on the collector's table: delete in slices, e.g.
--     DELETE FROM kong_looker_requests
--      WHERE started_at < now() - interval '90 days' AND started_at >= now() - interval '91 days';
-- * Dashboards group by route, status and consumer; past a few hundred
--   million rows, prefer the aggregate table in explores/kong_requests.

CREATE TABLE kong_looker_batches (
    instance_id           text        NOT NULL,
    sequence              bigint      NOT NULL,
    node_id               text,
    filter_version        text,
    kong_version          text,
    generation            bigint      NOT NULL,
    records               integer     NOT NULL,
    drops_buffer_full     bigint      NOT NULL,
    drops_dispatch_failed bigint      NOT NULL,
    drops_capture_error   bigint      NOT NULL,
    drops_instance_reset  bigint      NOT NULL,
    cut_at                timestamptz,
    received_at           timestamptz NOT NULL,
    committed_at          timestamptz NOT NULL,
    -- 'committed': a batch the collector stored. 'abandoned': a batch its
    -- producer reported giving up on (Drops.abandoned), records and drops
    -- 0, so the gap it leaves is explained rather than missing. Added by
    -- the collector's migration 0002_abandoned_batches.sql.
    state                 text        NOT NULL DEFAULT 'committed',
    PRIMARY KEY (instance_id, sequence)
);
-- The datagroup's sql_trigger reads MAX(committed_at): an index-only lookup.
CREATE INDEX kong_looker_batches_committed_at ON kong_looker_batches (committed_at);
