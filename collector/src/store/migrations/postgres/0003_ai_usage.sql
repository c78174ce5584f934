-- kong-looker collector, PostgreSQL, migration 3: what Kong's AI Gateway
-- recorded (schema revision 2, Records.ai): provider and models, tokens,
-- cost in millionths of the configured price unit (micro-USD for dollar
-- prices), LLM latency and time to first token, semantic cache, guardrail
-- blocks, MCP tool calls, and the section's unreadable values. NULL on
-- every row without AI figures, so existing rows keep their meaning and
-- need no backfill; the counts are never NULL on a row that has figures.

ALTER TABLE kong_looker_requests ADD COLUMN ai_provider text;
ALTER TABLE kong_looker_requests ADD COLUMN ai_request_model text;
ALTER TABLE kong_looker_requests ADD COLUMN ai_response_model text;
ALTER TABLE kong_looker_requests ADD COLUMN ai_request_mode text;
ALTER TABLE kong_looker_requests ADD COLUMN ai_prompt_tokens bigint;
ALTER TABLE kong_looker_requests ADD COLUMN ai_completion_tokens bigint;
ALTER TABLE kong_looker_requests ADD COLUMN ai_total_tokens bigint;
ALTER TABLE kong_looker_requests ADD COLUMN ai_cost_micros bigint;
ALTER TABLE kong_looker_requests ADD COLUMN ai_llm_latency_ms bigint;
ALTER TABLE kong_looker_requests ADD COLUMN ai_time_to_first_token_ms bigint;
ALTER TABLE kong_looker_requests ADD COLUMN ai_cache_status text;
ALTER TABLE kong_looker_requests ADD COLUMN ai_cache_fetch_latency_ms bigint;
ALTER TABLE kong_looker_requests ADD COLUMN ai_embeddings_model text;
ALTER TABLE kong_looker_requests ADD COLUMN ai_guardrail_blocks integer;
ALTER TABLE kong_looker_requests ADD COLUMN ai_guardrail text;
ALTER TABLE kong_looker_requests ADD COLUMN ai_mcp_tool_calls integer;
ALTER TABLE kong_looker_requests ADD COLUMN ai_mcp_tool text;
ALTER TABLE kong_looker_requests ADD COLUMN ai_calls integer;
ALTER TABLE kong_looker_requests ADD COLUMN ai_unreadable integer;
