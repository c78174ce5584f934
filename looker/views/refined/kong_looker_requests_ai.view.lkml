# AI Gateway fields of the requests table: what Kong's AI plugins recorded
# (provider, models, tokens, cost, LLM latency, semantic cache, guardrails,
# MCP tools). The columns are NULL on requests without AI figures, so every
# measure here counts AI Gateway requests only. Sums are weighted by
# sample_weight like every other count; percentiles are over stored rows.
# Cost is in the unit of the prices configured on Kong's AI plugins (Kong
# stores no currency): dollars when those prices are dollars per million
# tokens.
include: "/views/refined/kong_looker_requests.view.lkml"

view: +kong_looker_requests {

  # --- dimensions ------------------------------------------------------

  dimension: is_ai_gateway {
    label: "Is AI Gateway request"
    group_label: "AI Gateway"
    description: "Kong's AI plugins recorded figures for the request: an LLM call, a guardrail verdict or an MCP tool call."
    type: yesno
    sql: ${ai_calls} IS NOT NULL ;;
  }

  dimension: ai_provider {
    hidden: no
    label: "Provider"
    group_label: "AI Gateway"
    description: "The LLM provider of the proxied call (openai, anthropic, bedrock, ...)."
  }

  dimension: ai_request_model {
    hidden: no
    label: "Model requested"
    group_label: "AI Gateway"
    description: "The model the client asked for, or the one configured on the route."
  }

  dimension: ai_response_model {
    hidden: no
    label: "Model answered"
    group_label: "AI Gateway"
    description: "The model version that answered, as the provider reports it."
  }

  dimension: ai_model {
    label: "Model"
    group_label: "AI Gateway"
    description: "The model that answered, else the one requested."
    type: string
    sql: COALESCE(${ai_response_model}, ${ai_request_model}) ;;
  }

  dimension: ai_request_mode {
    hidden: no
    label: "Request mode"
    group_label: "AI Gateway"
    description: "oneshot, stream or realtime (Kong 3.12 and later)."
  }

  dimension: ai_cache_status {
    hidden: no
    label: "Semantic cache status"
    group_label: "AI Gateway"
    description: "hit, miss, bypass or refresh, where the AI semantic cache plugin runs."
  }

  dimension: is_ai_cache_hit {
    label: "Is semantic cache hit"
    group_label: "AI Gateway"
    description: "Answered from the semantic cache: the tokens Kong reports for it were not billed again."
    type: yesno
    sql: ${ai_cache_status} = 'hit' ;;
  }

  dimension: ai_embeddings_model {
    hidden: no
    label: "Embeddings model"
    group_label: "AI Gateway"
    description: "The embeddings model of a semantic cache match."
  }

  dimension: ai_guardrail {
    hidden: no
    label: "Guardrail"
    group_label: "AI Gateway"
    description: "The first guardrail that blocked the request (aws-guardrails, gcp-model-armor, azure-content-safety, ...)."
  }

  dimension: is_ai_blocked {
    label: "Is blocked by a guardrail"
    group_label: "AI Gateway"
    type: yesno
    sql: ${ai_guardrail_blocks} > 0 ;;
  }

  dimension: ai_mcp_tool {
    hidden: no
    label: "MCP tool"
    group_label: "AI Gateway"
    description: "The first MCP tool the request called."
  }

  dimension: ai_time_to_first_token_ms {
    hidden: no
    label: "Time to first token (ms)"
    group_label: "AI Gateway"
    description: "Streamed responses (Kong 3.12 and later)."
  }

  dimension: ai_llm_latency_ms {
    hidden: no
    label: "LLM latency (ms)"
    group_label: "AI Gateway"
    description: "Time the provider took to answer; absent for cache hits and blocked prompts."
  }

  # --- measures ----------------------------------------------------------

  measure: ai_request_count {
    label: "AI requests"
    group_label: "AI Gateway"
    description: "Requests with AI Gateway figures."
    type: sum
    sql: CASE WHEN ${ai_calls} IS NOT NULL THEN ${sample_weight} ELSE 0 END ;;
    value_format_name: decimal_0
    drill_fields: [ai_detail*]
  }

  measure: ai_prompt_tokens_total {
    label: "Prompt tokens"
    group_label: "AI Gateway"
    type: sum
    sql: ${ai_prompt_tokens} * ${sample_weight} ;;
    value_format_name: decimal_0
  }

  measure: ai_completion_tokens_total {
    label: "Completion tokens"
    group_label: "AI Gateway"
    type: sum
    sql: ${ai_completion_tokens} * ${sample_weight} ;;
    value_format_name: decimal_0
  }

  measure: ai_tokens_total {
    label: "Tokens"
    group_label: "AI Gateway"
    description: "Total tokens, as Kong reports them: semantic cache hits included."
    type: sum
    sql: ${ai_total_tokens} * ${sample_weight} ;;
    value_format_name: decimal_0
    drill_fields: [ai_detail*]
  }

  measure: ai_billed_tokens_total {
    label: "Billed tokens"
    group_label: "AI Gateway"
    description: "Total tokens of calls the provider answered: semantic cache hits left out."
    type: sum
    sql: CASE WHEN ${ai_cache_status} = 'hit' THEN 0 ELSE ${ai_total_tokens} * ${sample_weight} END ;;
    value_format_name: decimal_0
  }

  measure: ai_cost {
    label: "Cost"
    group_label: "AI Gateway"
    description: "Kong's cost estimate, in the unit of the prices configured on the AI plugins (dollars for prices in dollars per million tokens); cache hits included as Kong reports them."
    type: sum
    sql: ${ai_cost_micros} * ${sample_weight} / 1000000.0 ;;
    value_format_name: decimal_4
    drill_fields: [ai_detail*]
  }

  measure: ai_billed_cost {
    label: "Billed cost"
    group_label: "AI Gateway"
    description: "Cost of calls the provider answered: semantic cache hits left out."
    type: sum
    sql: CASE WHEN ${ai_cache_status} = 'hit' THEN 0 ELSE ${ai_cost_micros} * ${sample_weight} / 1000000.0 END ;;
    value_format_name: decimal_4
  }

  measure: ai_cost_per_1k_tokens {
    label: "Cost per 1,000 tokens"
    group_label: "AI Gateway"
    type: number
    sql: 1000.0 * ${ai_cost} / NULLIF(${ai_tokens_total}, 0) ;;
    value_format_name: decimal_4
  }

  # Completion tokens over the time the provider spent producing them, on
  # calls with an LLM latency (cache hits and blocked prompts have none).
  measure: ai_completion_tokens_timed {
    hidden: yes
    type: sum
    sql: CASE WHEN ${ai_llm_latency_ms} > 0 THEN ${ai_completion_tokens} * ${sample_weight} ELSE 0 END ;;
  }

  measure: ai_llm_seconds {
    hidden: yes
    type: sum
    sql: CASE WHEN ${ai_llm_latency_ms} > 0 THEN ${ai_llm_latency_ms} * ${sample_weight} / 1000.0 ELSE 0 END ;;
  }

  measure: ai_tokens_per_second {
    label: "Tokens per second"
    group_label: "AI Gateway"
    description: "Completion tokens per second of LLM latency, over calls the provider answered."
    type: number
    sql: ${ai_completion_tokens_timed} / NULLIF(${ai_llm_seconds}, 0) ;;
    value_format_name: decimal_1
  }

  measure: ai_llm_latency_p50_ms {
    label: "LLM latency p50 (ms)"
    group_label: "AI Gateway"
    type: percentile
    percentile: 50
    sql: ${ai_llm_latency_ms} ;;
    value_format_name: decimal_0
  }

  measure: ai_llm_latency_p95_ms {
    label: "LLM latency p95 (ms)"
    group_label: "AI Gateway"
    type: percentile
    percentile: 95
    sql: ${ai_llm_latency_ms} ;;
    value_format_name: decimal_0
  }

  measure: ai_time_to_first_token_p50_ms {
    label: "Time to first token p50 (ms)"
    group_label: "AI Gateway"
    description: "Over streamed responses that report it (Kong 3.12 and later)."
    type: percentile
    percentile: 50
    sql: ${ai_time_to_first_token_ms} ;;
    value_format_name: decimal_0
  }

  measure: ai_time_to_first_token_p95_ms {
    label: "Time to first token p95 (ms)"
    group_label: "AI Gateway"
    description: "Over streamed responses that report it (Kong 3.12 and later)."
    type: percentile
    percentile: 95
    sql: ${ai_time_to_first_token_ms} ;;
    value_format_name: decimal_0
  }

  measure: ai_cache_hit_count {
    hidden: yes
    type: sum
    sql: CASE WHEN ${ai_cache_status} = 'hit' THEN ${sample_weight} ELSE 0 END ;;
  }

  measure: ai_cache_lookup_count {
    hidden: yes
    type: sum
    sql: CASE WHEN ${ai_cache_status} IS NOT NULL THEN ${sample_weight} ELSE 0 END ;;
  }

  measure: ai_cache_hit_rate {
    label: "Semantic cache hit rate"
    group_label: "AI Gateway"
    description: "Hits over requests the semantic cache looked at."
    type: number
    sql: ${ai_cache_hit_count} / NULLIF(${ai_cache_lookup_count}, 0) ;;
    value_format_name: percent_1
  }

  measure: ai_guardrail_block_count {
    label: "Guardrail blocks"
    group_label: "AI Gateway"
    description: "Guardrail verdicts that blocked a prompt or a response."
    type: sum
    sql: ${ai_guardrail_blocks} * ${sample_weight} ;;
    value_format_name: decimal_0
    drill_fields: [ai_detail*]
  }

  measure: ai_mcp_tool_call_count {
    label: "MCP tool calls"
    group_label: "AI Gateway"
    type: sum
    sql: ${ai_mcp_tool_calls} * ${sample_weight} ;;
    value_format_name: decimal_0
  }

  measure: ai_unreadable_count {
    label: "Unreadable AI values"
    group_label: "AI Gateway"
    description: "Values of Kong's ai log section that could not be kept whole (wrong types, negative or out-of-range numbers, oversized names), per stored row: the rest of each such row landed."
    type: sum
    sql: ${ai_unreadable} ;;
    value_format_name: decimal_0
  }

  set: ai_detail {
    fields: [started_time, workspace, consumer_username, agent_name, ai_provider, ai_model, ai_cache_status, ai_guardrail, ai_mcp_tool, status, request_id]
  }
}
