-- kong-looker collector, PostgreSQL, migration 1: the tables Looker reads.
-- Column names and types are the contract with looker/; the SQLite
-- migration creates the same columns.

-- One row per request. Filter rows carry their batch; http-log rows do not.
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
    batch_sequence      bigint
);

-- Looker's time filters and the datagroup scan by start time. For tables
-- past a few hundred million rows, partition by range on started_at (daily)
-- and BRIN-index it instead.
CREATE INDEX kong_looker_requests_started_at ON kong_looker_requests (started_at);
-- Kong's request id is one request's key across the filter and http-log:
-- a request lands once, and the filter's row wins.
CREATE UNIQUE INDEX kong_looker_requests_request_id
    ON kong_looker_requests (request_id) WHERE request_id IS NOT NULL;

-- One row per committed filter batch: the exactly-once key, and the
-- producer's own accounting (drops by reason). Gaps in `sequence` per
-- instance are batches that never arrived.
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
    PRIMARY KEY (instance_id, sequence)
);
CREATE INDEX kong_looker_batches_committed_at ON kong_looker_batches (committed_at);

-- What each committed batch added to its producer's session dictionary, in
-- commit order, so a restarted collector can resolve the producer's next
-- batch. Internal: Looker does not read it.
CREATE TABLE kong_looker_dictionary (
    id          bigserial PRIMARY KEY,
    instance_id text   NOT NULL,
    generation  bigint NOT NULL,
    definitions bytea  NOT NULL
);
CREATE INDEX kong_looker_dictionary_producer
    ON kong_looker_dictionary (instance_id, generation, id);
