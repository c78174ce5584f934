# AI Gateway usage: what LLM calls through Kong cost, in tokens and in the
# price unit configured on Kong's AI plugins, by team, consumer group,
# model and agent family, with LLM latency per model, the semantic cache
# and guardrail blocks. Every tile reads the AI usage explore (or the
# consumer-group explore, limited to AI requests), so the team and group
# access filters apply.
- dashboard: kong_ai_usage
  title: "Kong AI usage"
  description: "LLM tokens and cost by team, consumer group, model and agent family; LLM latency and time to first token per model; semantic cache hit rate and guardrail blocks."
  layout: newspaper
  preferred_viewer: dashboards-next

  filters:
  - name: time_range
    title: "Time range"
    type: field_filter
    default_value: "7 days"
    allow_multiple_values: true
    required: false
    ui_config: {type: relative_timeframes, display: inline}
    model: kong_looker
    explore: kong_ai_usage
    field: kong_looker.started_time
  - name: team
    title: "Team"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config: {type: tag_list, display: popover}
    model: kong_looker
    explore: kong_ai_usage
    field: kong_looker.workspace
  - name: model
    title: "Model"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config: {type: tag_list, display: popover}
    model: kong_looker
    explore: kong_ai_usage
    field: kong_looker.ai_model

  elements:
  - name: ai_cost
    title: "Cost"
    note_text: "In the unit of the prices configured on Kong's AI plugins (dollars for dollar prices per million tokens)."
    model: kong_looker
    explore: kong_ai_usage
    type: single_value
    fields: [kong_looker.ai_cost]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 0
    col: 0
    width: 6
    height: 3
  - name: ai_tokens
    title: "Tokens"
    model: kong_looker
    explore: kong_ai_usage
    type: single_value
    fields: [kong_looker.ai_tokens_total]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 0
    col: 6
    width: 6
    height: 3
  - name: ai_cache_hit_rate
    title: "Semantic cache hit rate"
    model: kong_looker
    explore: kong_ai_usage
    type: single_value
    fields: [kong_looker.ai_cache_hit_rate]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 0
    col: 12
    width: 6
    height: 3
  - name: ai_guardrail_blocks
    title: "Guardrail blocks"
    model: kong_looker
    explore: kong_ai_usage
    type: single_value
    fields: [kong_looker.ai_guardrail_block_count]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 0
    col: 18
    width: 6
    height: 3

  - name: cost_over_time_by_model
    title: "Cost by model over time"
    model: kong_looker
    explore: kong_ai_usage
    type: looker_area
    fields: [kong_looker.started_hour, kong_looker.ai_model, kong_looker.ai_cost]
    pivots: [kong_looker.ai_model]
    sorts: [kong_looker.started_hour]
    limit: 500
    stacking: normal
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 3
    col: 0
    width: 24
    height: 7

  - name: cost_by_team
    title: "Cost and tokens by team"
    model: kong_looker
    explore: kong_ai_usage
    type: looker_grid
    fields: [kong_looker.workspace, kong_looker.ai_request_count, kong_looker.ai_tokens_total, kong_looker.ai_billed_tokens_total, kong_looker.ai_cost, kong_looker.ai_billed_cost]
    sorts: [kong_looker.ai_cost desc]
    limit: 50
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 10
    col: 0
    width: 12
    height: 7
  - name: cost_by_consumer_group
    title: "Cost and tokens by consumer group"
    note_text: "A request in two groups counts in each."
    model: kong_looker
    explore: kong_consumer_groups
    type: looker_bar
    fields: [kong_looker.consumer_group, kong_looker.ai_cost, kong_looker.ai_tokens_total]
    filters:
      kong_looker.is_ai_gateway: "Yes"
    sorts: [kong_looker.ai_cost desc]
    limit: 25
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 10
    col: 12
    width: 12
    height: 7

  - name: cost_by_consumer
    title: "Top consumers by cost"
    model: kong_looker
    explore: kong_ai_usage
    type: looker_grid
    fields: [kong_looker.consumer_username, kong_looker.ai_request_count, kong_looker.ai_tokens_total, kong_looker.ai_cost, kong_looker.ai_cost_per_1k_tokens]
    filters:
      kong_looker.consumer_username: "-NULL"
    sorts: [kong_looker.ai_cost desc]
    limit: 25
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 17
    col: 0
    width: 12
    height: 8
  - name: cost_by_agent_family
    title: "Cost by agent family"
    model: kong_looker
    explore: kong_ai_usage
    type: looker_pie
    fields: [kong_looker.agent_category, kong_looker.ai_cost]
    sorts: [kong_looker.ai_cost desc]
    limit: 20
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 17
    col: 12
    width: 12
    height: 8

  - name: latency_by_model
    title: "LLM latency and speed per model"
    model: kong_looker
    explore: kong_ai_usage
    type: looker_grid
    fields: [kong_looker.ai_provider, kong_looker.ai_model, kong_looker.ai_request_count, kong_looker.ai_llm_latency_p50_ms, kong_looker.ai_llm_latency_p95_ms, kong_looker.ai_time_to_first_token_p50_ms, kong_looker.ai_time_to_first_token_p95_ms, kong_looker.ai_tokens_per_second]
    filters:
      kong_looker.ai_model: "-NULL"
    sorts: [kong_looker.ai_request_count desc]
    limit: 50
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 25
    col: 0
    width: 24
    height: 7

  - name: guardrails_and_tools
    title: "Guardrail blocks and MCP tool calls"
    model: kong_looker
    explore: kong_ai_usage
    type: looker_grid
    fields: [kong_looker.ai_guardrail, kong_looker.ai_mcp_tool, kong_looker.ai_guardrail_block_count, kong_looker.ai_mcp_tool_call_count, kong_looker.ai_unreadable_count]
    sorts: [kong_looker.ai_guardrail_block_count desc]
    limit: 50
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, model: kong_looker.ai_model}
    row: 32
    col: 0
    width: 24
    height: 6
