-- kong-looker tables on Snowflake.
-- NOT EXERCISED BY THE TEST SUITE: looker/tests checks only that these
-- columns match the collector's; the SQL itself has not been run. The
-- LookML's Snowflake branches (_dialect._name == 'snowflake') are likewise
-- untested.
--
-- The collector writes PostgreSQL or SQLite: load these tables from
-- PostgreSQL (a CDC connector, or a scheduled COPY INTO from staged
-- exports). Use the schema set in the SCHEMA_NAME constant.
--
-- Looker connection: dialect "Snowflake", Database Time Zone UTC. Times
-- are TIMESTAMP_NTZ holding UTC (load them converted to UTC); the LookML
-- compares them with SYSDATE(), which is UTC too.

CREATE TABLE kong_looker_requests (
    started_at          TIMESTAMP_NTZ(3) NOT NULL,
    workspace           VARCHAR,
    route_id            VARCHAR,
    route_name          VARCHAR,
    service_id          VARCHAR,
    service_name        VARCHAR,
    method              VARCHAR,
    host                VARCHAR,
    path                VARCHAR,
    status              INTEGER,
    response_source     VARCHAR,
    latency_total_us    BIGINT NOT NULL,
    latency_upstream_us BIGINT,
    request_bytes       BIGINT NOT NULL,
    response_bytes      BIGINT NOT NULL,
    auth_method         VARCHAR,
    trust               VARCHAR,
    anonymous           BOOLEAN NOT NULL,
    consumer_id         VARCHAR,
    consumer_username   VARCHAR,
    consumer_custom_id  VARCHAR,
    credential          VARCHAR,
    consumer_groups     VARCHAR,
    subject             VARCHAR,
    issuer              VARCHAR,
    client_id           VARCHAR,
    client_address      VARCHAR,
    agent_category      VARCHAR,
    agent_name          VARCHAR,
    request_id          VARCHAR,
    trace_id            VARCHAR,
    sample_weight       DOUBLE NOT NULL,
    origin              VARCHAR NOT NULL,
    instance_id         VARCHAR,
    batch_sequence      BIGINT,
    -- AI Gateway figures (NULL without them); cost in millionths of the
    -- price unit configured in Kong (micro-USD for dollar prices).
    ai_provider         VARCHAR,
    ai_request_model    VARCHAR,
    ai_response_model   VARCHAR,
    ai_request_mode     VARCHAR,
    ai_prompt_tokens    BIGINT,
    ai_completion_tokens BIGINT,
    ai_total_tokens     BIGINT,
    ai_cost_micros      BIGINT,
    ai_llm_latency_ms   BIGINT,
    ai_time_to_first_token_ms BIGINT,
    ai_cache_status     VARCHAR,
    ai_cache_fetch_latency_ms BIGINT,
    ai_embeddings_model VARCHAR,
    ai_guardrail_blocks INTEGER,
    ai_guardrail        VARCHAR,
    ai_mcp_tool_calls   INTEGER,
    ai_mcp_tool         VARCHAR,
    ai_calls            INTEGER,
    ai_unreadable       INTEGER
)
-- Snowflake partitions into micro-partitions by load order, which is
-- already roughly by time. Past a few billion rows, cluster on the day so
-- time filters keep pruning after reloads, then the team label.
CLUSTER BY (TO_DATE(started_at), workspace)
DATA_RETENTION_TIME_IN_DAYS = 1;

-- Small: one row per 1,000 requests; no clustering needed.
CREATE TABLE kong_looker_batches (
    instance_id           VARCHAR NOT NULL,
    sequence              BIGINT NOT NULL,
    node_id               VARCHAR,
    filter_version        VARCHAR,
    kong_version          VARCHAR,
    generation            BIGINT NOT NULL,
    records               INTEGER NOT NULL,
    drops_buffer_full     BIGINT NOT NULL,
    drops_dispatch_failed BIGINT NOT NULL,
    drops_capture_error   BIGINT NOT NULL,
    drops_instance_reset  BIGINT NOT NULL,
    cut_at                TIMESTAMP_NTZ(3),
    received_at           TIMESTAMP_NTZ(3) NOT NULL,
    committed_at          TIMESTAMP_NTZ(3) NOT NULL,
    -- 'committed', or 'abandoned': a batch its producer reported giving up on.
    state                 VARCHAR NOT NULL DEFAULT 'committed',
    PRIMARY KEY (instance_id, sequence)
);
