-- kong-looker collector, SQLite, migration 4: what Kong's AI Gateway
-- recorded (schema revision 2, Records.ai): provider and models, tokens,
-- cost in millionths of the configured price unit (micro-USD for dollar
-- prices), LLM latency and time to first token, semantic cache, guardrail
-- blocks, MCP tool calls, and the section's unreadable values. NULL on
-- every row without AI figures, so existing rows keep their meaning and
-- need no backfill; the counts are never NULL on a row that has figures.
-- Names are kong_looker_text ids, as in migration 2; the view gains the
-- columns at its end, as the contract lists them.

ALTER TABLE kong_looker_request_rows ADD COLUMN ai_provider INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_request_model INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_response_model INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_request_mode INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_prompt_tokens INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_completion_tokens INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_total_tokens INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_cost_micros INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_llm_latency_ms INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_time_to_first_token_ms INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_cache_status INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_cache_fetch_latency_ms INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_embeddings_model INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_guardrail_blocks INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_guardrail INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_mcp_tool_calls INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_mcp_tool INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_calls INTEGER;
ALTER TABLE kong_looker_request_rows ADD COLUMN ai_unreadable INTEGER;

DROP VIEW kong_looker_requests;
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
    r.batch_sequence,
    (SELECT value FROM kong_looker_text WHERE id = r.ai_provider) AS ai_provider,
    (SELECT value FROM kong_looker_text WHERE id = r.ai_request_model) AS ai_request_model,
    (SELECT value FROM kong_looker_text WHERE id = r.ai_response_model) AS ai_response_model,
    (SELECT value FROM kong_looker_text WHERE id = r.ai_request_mode) AS ai_request_mode,
    r.ai_prompt_tokens,
    r.ai_completion_tokens,
    r.ai_total_tokens,
    r.ai_cost_micros,
    r.ai_llm_latency_ms,
    r.ai_time_to_first_token_ms,
    (SELECT value FROM kong_looker_text WHERE id = r.ai_cache_status) AS ai_cache_status,
    r.ai_cache_fetch_latency_ms,
    (SELECT value FROM kong_looker_text WHERE id = r.ai_embeddings_model) AS ai_embeddings_model,
    r.ai_guardrail_blocks,
    (SELECT value FROM kong_looker_text WHERE id = r.ai_guardrail) AS ai_guardrail,
    r.ai_mcp_tool_calls,
    (SELECT value FROM kong_looker_text WHERE id = r.ai_mcp_tool) AS ai_mcp_tool,
    r.ai_calls,
    r.ai_unreadable
FROM kong_looker_request_rows AS r;
