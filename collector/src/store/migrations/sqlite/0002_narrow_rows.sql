-- kong-looker collector, SQLite, migration 2: requests as narrow rows.
--
-- SQLite spends its time per byte of row, and most of a request row is
-- text that repeats: route, service and consumer ids and names, paths,
-- hosts, the producer's instance id. Each distinct text is now stored once
-- in kong_looker_text, and kong_looker_request_rows holds its id, so a row
-- is about a fifth of its old size and commits several times faster.
-- kong_looker_requests becomes a view with the same columns, in the same
-- order and with the same values as before, so queries need no change.
-- Time filters over many rows should use kong_looker_request_rows'
-- started_at_ms (Unix ms, indexed) rather than the view's text.

CREATE TABLE kong_looker_text (
    id    INTEGER PRIMARY KEY,
    value TEXT NOT NULL UNIQUE
);

-- Columns named as in the view; text columns hold kong_looker_text ids.
CREATE TABLE kong_looker_request_rows (
    id                  INTEGER PRIMARY KEY,
    started_at_ms       INTEGER NOT NULL,
    workspace           INTEGER,
    route_id            INTEGER,
    route_name          INTEGER,
    service_id          INTEGER,
    service_name        INTEGER,
    method              INTEGER,
    host                INTEGER,
    path                INTEGER,
    status              INTEGER,
    response_source     INTEGER,
    latency_total_us    INTEGER NOT NULL,
    latency_upstream_us INTEGER,
    request_bytes       INTEGER NOT NULL,
    response_bytes      INTEGER NOT NULL,
    auth_method         INTEGER,
    trust               INTEGER,
    anonymous           INTEGER NOT NULL,
    consumer_id         INTEGER,
    consumer_username   INTEGER,
    consumer_custom_id  INTEGER,
    credential          INTEGER,
    consumer_groups     INTEGER,
    subject             INTEGER,
    issuer              INTEGER,
    client_id           INTEGER,
    client_address      INTEGER,
    agent_category      INTEGER,
    agent_name          INTEGER,
    request_id          TEXT,
    trace_id            TEXT,
    sample_weight       REAL    NOT NULL,
    origin              INTEGER NOT NULL,
    instance_id         INTEGER,
    batch_sequence      INTEGER
);

-- Every text the old table holds, then its rows in their order.
INSERT INTO kong_looker_text (value)
SELECT value FROM (
    SELECT workspace AS value FROM kong_looker_requests
    UNION SELECT route_id AS value FROM kong_looker_requests
    UNION SELECT route_name AS value FROM kong_looker_requests
    UNION SELECT service_id AS value FROM kong_looker_requests
    UNION SELECT service_name AS value FROM kong_looker_requests
    UNION SELECT method AS value FROM kong_looker_requests
    UNION SELECT host AS value FROM kong_looker_requests
    UNION SELECT path AS value FROM kong_looker_requests
    UNION SELECT response_source AS value FROM kong_looker_requests
    UNION SELECT auth_method AS value FROM kong_looker_requests
    UNION SELECT trust AS value FROM kong_looker_requests
    UNION SELECT consumer_id AS value FROM kong_looker_requests
    UNION SELECT consumer_username AS value FROM kong_looker_requests
    UNION SELECT consumer_custom_id AS value FROM kong_looker_requests
    UNION SELECT credential AS value FROM kong_looker_requests
    UNION SELECT consumer_groups AS value FROM kong_looker_requests
    UNION SELECT subject AS value FROM kong_looker_requests
    UNION SELECT issuer AS value FROM kong_looker_requests
    UNION SELECT client_id AS value FROM kong_looker_requests
    UNION SELECT client_address AS value FROM kong_looker_requests
    UNION SELECT agent_category AS value FROM kong_looker_requests
    UNION SELECT agent_name AS value FROM kong_looker_requests
    UNION SELECT origin AS value FROM kong_looker_requests
    UNION SELECT instance_id AS value FROM kong_looker_requests
) WHERE value IS NOT NULL;
INSERT INTO kong_looker_request_rows (started_at_ms, workspace, route_id, route_name, service_id, service_name, method, host, path, status, response_source, latency_total_us, latency_upstream_us, request_bytes, response_bytes, auth_method, trust, anonymous, consumer_id, consumer_username, consumer_custom_id, credential, consumer_groups, subject, issuer, client_id, client_address, agent_category, agent_name, request_id, trace_id, sample_weight, origin, instance_id, batch_sequence)
SELECT
    CAST(strftime('%s', started_at) AS INTEGER) * 1000 + CAST(substr(started_at, 21, 3) AS INTEGER),
    (SELECT id FROM kong_looker_text WHERE value = q.workspace),
    (SELECT id FROM kong_looker_text WHERE value = q.route_id),
    (SELECT id FROM kong_looker_text WHERE value = q.route_name),
    (SELECT id FROM kong_looker_text WHERE value = q.service_id),
    (SELECT id FROM kong_looker_text WHERE value = q.service_name),
    (SELECT id FROM kong_looker_text WHERE value = q.method),
    (SELECT id FROM kong_looker_text WHERE value = q.host),
    (SELECT id FROM kong_looker_text WHERE value = q.path),
    q.status,
    (SELECT id FROM kong_looker_text WHERE value = q.response_source),
    q.latency_total_us,
    q.latency_upstream_us,
    q.request_bytes,
    q.response_bytes,
    (SELECT id FROM kong_looker_text WHERE value = q.auth_method),
    (SELECT id FROM kong_looker_text WHERE value = q.trust),
    q.anonymous,
    (SELECT id FROM kong_looker_text WHERE value = q.consumer_id),
    (SELECT id FROM kong_looker_text WHERE value = q.consumer_username),
    (SELECT id FROM kong_looker_text WHERE value = q.consumer_custom_id),
    (SELECT id FROM kong_looker_text WHERE value = q.credential),
    (SELECT id FROM kong_looker_text WHERE value = q.consumer_groups),
    (SELECT id FROM kong_looker_text WHERE value = q.subject),
    (SELECT id FROM kong_looker_text WHERE value = q.issuer),
    (SELECT id FROM kong_looker_text WHERE value = q.client_id),
    (SELECT id FROM kong_looker_text WHERE value = q.client_address),
    (SELECT id FROM kong_looker_text WHERE value = q.agent_category),
    (SELECT id FROM kong_looker_text WHERE value = q.agent_name),
    q.request_id,
    q.trace_id,
    q.sample_weight,
    (SELECT id FROM kong_looker_text WHERE value = q.origin),
    (SELECT id FROM kong_looker_text WHERE value = q.instance_id),
    q.batch_sequence
FROM kong_looker_requests AS q ORDER BY q.rowid;
DROP TABLE kong_looker_requests;

CREATE INDEX kong_looker_request_rows_started_at ON kong_looker_request_rows (started_at_ms);
CREATE UNIQUE INDEX kong_looker_request_rows_request_id
    ON kong_looker_request_rows (request_id) WHERE request_id IS NOT NULL;

-- The contract's columns (collector/src/row.rs), in order.
CREATE VIEW kong_looker_requests AS
SELECT
    strftime('%Y-%m-%dT%H:%M:%fZ', r.started_at_ms / 1000.0, 'unixepoch') AS started_at,
    (SELECT value FROM kong_looker_text WHERE id = r.workspace) AS workspace,
    (SELECT value FROM kong_looker_text WHERE id = r.route_id) AS route_id,
    (SELECT value FROM kong_looker_text WHERE id = r.route_name) AS route_name,
    (SELECT value FROM kong_looker_text WHERE id = r.service_id) AS service_id,
    (SELECT value FROM kong_looker_text WHERE id = r.service_name) AS service_name,
    (SELECT value FROM kong_looker_text WHERE id = r.method) AS method,
    (SELECT value FROM kong_looker_text WHERE id = r.host) AS host,
    (SELECT value FROM kong_looker_text WHERE id = r.path) AS path,
    r.status,
    (SELECT value FROM kong_looker_text WHERE id = r.response_source) AS response_source,
    r.latency_total_us,
    r.latency_upstream_us,
    r.request_bytes,
    r.response_bytes,
    (SELECT value FROM kong_looker_text WHERE id = r.auth_method) AS auth_method,
    (SELECT value FROM kong_looker_text WHERE id = r.trust) AS trust,
    r.anonymous,
    (SELECT value FROM kong_looker_text WHERE id = r.consumer_id) AS consumer_id,
    (SELECT value FROM kong_looker_text WHERE id = r.consumer_username) AS consumer_username,
    (SELECT value FROM kong_looker_text WHERE id = r.consumer_custom_id) AS consumer_custom_id,
    (SELECT value FROM kong_looker_text WHERE id = r.credential) AS credential,
    (SELECT value FROM kong_looker_text WHERE id = r.consumer_groups) AS consumer_groups,
    (SELECT value FROM kong_looker_text WHERE id = r.subject) AS subject,
    (SELECT value FROM kong_looker_text WHERE id = r.issuer) AS issuer,
    (SELECT value FROM kong_looker_text WHERE id = r.client_id) AS client_id,
    (SELECT value FROM kong_looker_text WHERE id = r.client_address) AS client_address,
    (SELECT value FROM kong_looker_text WHERE id = r.agent_category) AS agent_category,
    (SELECT value FROM kong_looker_text WHERE id = r.agent_name) AS agent_name,
    r.request_id,
    r.trace_id,
    r.sample_weight,
    (SELECT value FROM kong_looker_text WHERE id = r.origin) AS origin,
    (SELECT value FROM kong_looker_text WHERE id = r.instance_id) AS instance_id,
    r.batch_sequence
FROM kong_looker_request_rows AS r;
