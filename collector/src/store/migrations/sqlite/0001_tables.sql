-- kong-looker collector, SQLite, migration 1: the same tables as the
-- PostgreSQL migration. Times are ISO 8601 UTC text
-- (2026-11-29T03:25:19.123Z), which SQLite's date functions read.

CREATE TABLE kong_looker_requests (
    started_at          TEXT    NOT NULL,
    workspace           TEXT,
    route_id            TEXT,
    route_name          TEXT,
    service_id          TEXT,
    service_name        TEXT,
    method              TEXT,
    host                TEXT,
    path                TEXT,
    status              INTEGER,
    response_source     TEXT,
    latency_total_us    INTEGER NOT NULL,
    latency_upstream_us INTEGER,
    request_bytes       INTEGER NOT NULL,
    response_bytes      INTEGER NOT NULL,
    auth_method         TEXT,
    trust               TEXT,
    anonymous           INTEGER NOT NULL,
    consumer_id         TEXT,
    consumer_username   TEXT,
    consumer_custom_id  TEXT,
    credential          TEXT,
    consumer_groups     TEXT,
    subject             TEXT,
    issuer              TEXT,
    client_id           TEXT,
    client_address      TEXT,
    agent_category      TEXT,
    agent_name          TEXT,
    request_id          TEXT,
    trace_id            TEXT,
    sample_weight       REAL    NOT NULL,
    origin              TEXT    NOT NULL,
    instance_id         TEXT,
    batch_sequence      INTEGER
);
CREATE INDEX kong_looker_requests_started_at ON kong_looker_requests (started_at);
CREATE UNIQUE INDEX kong_looker_requests_request_id
    ON kong_looker_requests (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE kong_looker_batches (
    instance_id           TEXT    NOT NULL,
    sequence              INTEGER NOT NULL,
    node_id               TEXT,
    filter_version        TEXT,
    kong_version          TEXT,
    generation            INTEGER NOT NULL,
    records               INTEGER NOT NULL,
    drops_buffer_full     INTEGER NOT NULL,
    drops_dispatch_failed INTEGER NOT NULL,
    drops_capture_error   INTEGER NOT NULL,
    drops_instance_reset  INTEGER NOT NULL,
    cut_at                TEXT,
    received_at           TEXT    NOT NULL,
    committed_at          TEXT    NOT NULL,
    PRIMARY KEY (instance_id, sequence)
) WITHOUT ROWID;
CREATE INDEX kong_looker_batches_committed_at ON kong_looker_batches (committed_at);

CREATE TABLE kong_looker_dictionary (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT    NOT NULL,
    generation  INTEGER NOT NULL,
    definitions BLOB    NOT NULL
);
CREATE INDEX kong_looker_dictionary_producer
    ON kong_looker_dictionary (instance_id, generation, id);
