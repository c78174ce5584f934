-- kong-looker tables on BigQuery (Standard SQL).
-- NOT EXERCISED BY THE TEST SUITE: looker/tests checks only that these
-- columns match the collector's; the SQL itself has not been run. The
-- LookML's BigQuery branches (_dialect._name == 'bigquery_standard_sql')
-- are likewise untested.
--
-- The collector writes PostgreSQL or SQLite: load these tables from
-- PostgreSQL (Datastream, a federated EXTERNAL_QUERY on Cloud SQL, or a
-- scheduled export). Replace kong_looker with the dataset set in the
-- SCHEMA_NAME constant.
--
-- Looker connection: dialect "Google BigQuery Standard SQL". TIMESTAMP is
-- an absolute instant, so no time zone setting is needed.

CREATE TABLE kong_looker.kong_looker_requests (
    started_at          TIMESTAMP NOT NULL,
    workspace           STRING,
    route_id            STRING,
    route_name          STRING,
    service_id          STRING,
    service_name        STRING,
    method              STRING,
    host                STRING,
    path                STRING,
    status              INT64,
    response_source     STRING,
    latency_total_us    INT64 NOT NULL,
    latency_upstream_us INT64,
    request_bytes       INT64 NOT NULL,
    response_bytes      INT64 NOT NULL,
    auth_method         STRING,
    trust               STRING,
    anonymous           BOOL NOT NULL,
    consumer_id         STRING,
    consumer_username   STRING,
    consumer_custom_id  STRING,
    credential          STRING,
    consumer_groups     STRING,
    subject             STRING,
    issuer              STRING,
    client_id           STRING,
    client_address      STRING,
    agent_category      STRING,
    agent_name          STRING,
    request_id          STRING,
    trace_id            STRING,
    sample_weight       FLOAT64 NOT NULL,
    origin              STRING NOT NULL,
    instance_id         STRING,
    batch_sequence      INT64,
    -- AI Gateway figures (NULL without them); cost in millionths of the
    -- price unit configured in Kong (micro-USD for dollar prices).
    ai_provider         STRING,
    ai_request_model    STRING,
    ai_response_model   STRING,
    ai_request_mode     STRING,
    ai_prompt_tokens    INT64,
    ai_completion_tokens INT64,
    ai_total_tokens     INT64,
    ai_cost_micros      INT64,
    ai_llm_latency_ms   INT64,
    ai_time_to_first_token_ms INT64,
    ai_cache_status     STRING,
    ai_cache_fetch_latency_ms INT64,
    ai_embeddings_model STRING,
    ai_guardrail_blocks INT64,
    ai_guardrail        STRING,
    ai_mcp_tool_calls   INT64,
    ai_mcp_tool         STRING,
    ai_calls            INT64,
    ai_unreadable       INT64
)
-- Daily partitions: Looker's time filters on started_at prune them, and
-- require_partition_filter stops a query from scanning every day.
PARTITION BY DATE(started_at)
-- Clustering sorts each partition by the columns dashboards filter and
-- group on most; the team label first because access filters always use it.
CLUSTER BY workspace, service_name, route_name, status
OPTIONS (require_partition_filter = TRUE, partition_expiration_days = 400);

-- Small: one row per 1,000 requests. Clustered for the datagroup's
-- MAX(committed_at) and per-producer gap queries.
CREATE TABLE kong_looker.kong_looker_batches (
    instance_id           STRING NOT NULL,
    sequence              INT64 NOT NULL,
    node_id               STRING,
    filter_version        STRING,
    kong_version          STRING,
    generation            INT64 NOT NULL,
    records               INT64 NOT NULL,
    drops_buffer_full     INT64 NOT NULL,
    drops_dispatch_failed INT64 NOT NULL,
    drops_capture_error   INT64 NOT NULL,
    drops_instance_reset  INT64 NOT NULL,
    cut_at                TIMESTAMP,
    received_at           TIMESTAMP NOT NULL,
    committed_at          TIMESTAMP NOT NULL,
    -- 'committed', or 'abandoned': a batch its producer reported giving up on.
    state                 STRING NOT NULL
)
PARTITION BY DATE(committed_at)
CLUSTER BY instance_id, sequence;
