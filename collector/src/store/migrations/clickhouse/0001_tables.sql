-- kong-looker collector, ClickHouse, migration 1: the tables Looker reads.
--
-- ClickHouse has no transactions and no unique keys, so exactly-once is
-- made of idempotent rows: every row has a key that a retry, a replay or a
-- second collector reproduces byte for byte, the tables are
-- ReplacingMergeTree on that key, and Looker reads views that collapse
-- duplicates with FINAL (collector/README.md, "ClickHouse"). The views
-- have the contract's names and columns, so the LookML runs unchanged.
--
-- Written for current ClickHouse. On servers older than 20.1, which lack
-- DateTime64, the collector creates DateTime('UTC') (whole seconds)
-- instead, and String for LowCardinality(String) (experimental there, and
-- slow to insert); nothing else differs. looker/ddl/clickhouse.sql holds the same statements (a test
-- keeps them equal).

-- One row per request, duplicates included until a merge removes them.
-- row_key: 'r:' and Kong's request id when there is one (the filter's row
-- and http-log's for one request share it), else 'b:' instance, batch
-- sequence and record index for filter rows, 'h:' and a random id for
-- http-log rows without a request id. version ranks the rows of one key:
-- the one with AI figures of more LLM calls (any figures before none),
-- then the one that knows more of what the request was, then the
-- filter's.
CREATE TABLE IF NOT EXISTS kong_looker_request_rows
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
    anonymous           UInt8,
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
    ai_unreadable       Nullable(Int32),
    row_key             String,
    version             UInt32
)
ENGINE = ReplacingMergeTree(version)
-- One partition per day: retention is ALTER TABLE ... DROP PARTITION, and
-- time filters prune whole days. Duplicates collapse only within a
-- partition, so the partition is a function of the row, never of when it
-- arrived.
PARTITION BY toDate(started_at)
ORDER BY row_key;

CREATE VIEW IF NOT EXISTS kong_looker_requests AS
SELECT
    started_at, workspace, route_id, route_name, service_id, service_name,
    method, host, path, status, response_source, latency_total_us,
    latency_upstream_us, request_bytes, response_bytes, auth_method, trust,
    anonymous, consumer_id, consumer_username, consumer_custom_id, credential,
    consumer_groups, subject, issuer, client_id, client_address,
    agent_category, agent_name, request_id, trace_id, sample_weight, origin,
    instance_id, batch_sequence, ai_provider, ai_request_model,
    ai_response_model, ai_request_mode, ai_prompt_tokens,
    ai_completion_tokens, ai_total_tokens, ai_cost_micros, ai_llm_latency_ms,
    ai_time_to_first_token_ms, ai_cache_status, ai_cache_fetch_latency_ms,
    ai_embeddings_model, ai_guardrail_blocks, ai_guardrail, ai_mcp_tool_calls,
    ai_mcp_tool, ai_calls, ai_unreadable
FROM kong_looker_request_rows FINAL;

-- One row per sequence number the collector knows of: a committed batch
-- (state_rank 1), or a producer's notice that it abandoned one (state_rank 0). A batch
-- arriving after its notice outranks it; a batch stored twice collapses.
CREATE TABLE IF NOT EXISTS kong_looker_batch_rows
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
    state                 LowCardinality(String),
    state_rank            UInt8
)
ENGINE = ReplacingMergeTree(state_rank)
ORDER BY (instance_id, sequence);

CREATE VIEW IF NOT EXISTS kong_looker_batches AS
SELECT
    instance_id, sequence, node_id, filter_version, kong_version, generation,
    records, drops_buffer_full, drops_dispatch_failed, drops_capture_error,
    drops_instance_reset, cut_at, received_at, committed_at, state
FROM kong_looker_batch_rows FINAL;

-- What each committed batch added to its producer's session dictionary, so
-- that whichever collector receives the producer's next batch can resolve
-- it. Internal: Looker does not read it.
CREATE TABLE IF NOT EXISTS kong_looker_dictionary
(
    instance_id String,
    generation  Int64,
    sequence    Int64,
    definitions String
)
ENGINE = ReplacingMergeTree
ORDER BY (instance_id, generation, sequence);
