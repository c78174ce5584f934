# Mirrors the collector's kong_looker_requests table, one field per column
# in the table's order (collector/src/store/migrations/*/0001_tables.sql).
# Everything is hidden here; views/refined/ exposes, labels and measures it.
view: kong_looker_requests {
  # @{SCHEMA_NAME}, @{REQUESTS_TABLE}: manifest.lkml.
  sql_table_name: @{SCHEMA_NAME}.@{REQUESTS_TABLE} ;;
  fields_hidden_by_default: yes

  dimension_group: started {
    type: time
    timeframes: [raw, time, minute, hour, date, week, month]
    sql: ${TABLE}.started_at ;;
  }

  dimension: workspace {
    type: string
    sql: ${TABLE}.workspace ;;
  }

  dimension: route_id {
    type: string
    sql: ${TABLE}.route_id ;;
  }

  dimension: route_name {
    type: string
    sql: ${TABLE}.route_name ;;
  }

  dimension: service_id {
    type: string
    sql: ${TABLE}.service_id ;;
  }

  dimension: service_name {
    type: string
    sql: ${TABLE}.service_name ;;
  }

  dimension: method {
    type: string
    sql: ${TABLE}.method ;;
  }

  dimension: host {
    type: string
    sql: ${TABLE}.host ;;
  }

  dimension: path {
    type: string
    sql: ${TABLE}.path ;;
  }

  dimension: status {
    type: number
    sql: ${TABLE}.status ;;
  }

  dimension: response_source {
    type: string
    sql: ${TABLE}.response_source ;;
  }

  dimension: latency_total_us {
    type: number
    sql: ${TABLE}.latency_total_us ;;
  }

  dimension: latency_upstream_us {
    type: number
    sql: ${TABLE}.latency_upstream_us ;;
  }

  dimension: request_bytes {
    type: number
    sql: ${TABLE}.request_bytes ;;
  }

  dimension: response_bytes {
    type: number
    sql: ${TABLE}.response_bytes ;;
  }

  dimension: auth_method {
    type: string
    sql: ${TABLE}.auth_method ;;
  }

  dimension: trust {
    type: string
    sql: ${TABLE}.trust ;;
  }

  dimension: anonymous {
    type: yesno
    sql: ${TABLE}.anonymous ;;
  }

  dimension: consumer_id {
    type: string
    sql: ${TABLE}.consumer_id ;;
  }

  dimension: consumer_username {
    type: string
    sql: ${TABLE}.consumer_username ;;
  }

  dimension: consumer_custom_id {
    type: string
    sql: ${TABLE}.consumer_custom_id ;;
  }

  dimension: credential {
    type: string
    sql: ${TABLE}.credential ;;
  }

  dimension: consumer_groups {
    type: string
    sql: ${TABLE}.consumer_groups ;;
  }

  dimension: subject {
    type: string
    sql: ${TABLE}.subject ;;
  }

  dimension: issuer {
    type: string
    sql: ${TABLE}.issuer ;;
  }

  dimension: client_id {
    type: string
    sql: ${TABLE}.client_id ;;
  }

  dimension: client_address {
    type: string
    sql: ${TABLE}.client_address ;;
  }

  dimension: agent_category {
    type: string
    sql: ${TABLE}.agent_category ;;
  }

  dimension: agent_name {
    type: string
    sql: ${TABLE}.agent_name ;;
  }

  dimension: request_id {
    type: string
    sql: ${TABLE}.request_id ;;
  }

  dimension: trace_id {
    type: string
    sql: ${TABLE}.trace_id ;;
  }

  dimension: sample_weight {
    type: number
    sql: ${TABLE}.sample_weight ;;
  }

  dimension: origin {
    type: string
    sql: ${TABLE}.origin ;;
  }

  dimension: instance_id {
    type: string
    sql: ${TABLE}.instance_id ;;
  }

  dimension: batch_sequence {
    type: number
    sql: ${TABLE}.batch_sequence ;;
  }

  dimension: ai_provider {
    type: string
    sql: ${TABLE}.ai_provider ;;
  }

  dimension: ai_request_model {
    type: string
    sql: ${TABLE}.ai_request_model ;;
  }

  dimension: ai_response_model {
    type: string
    sql: ${TABLE}.ai_response_model ;;
  }

  dimension: ai_request_mode {
    type: string
    sql: ${TABLE}.ai_request_mode ;;
  }

  dimension: ai_prompt_tokens {
    type: number
    sql: ${TABLE}.ai_prompt_tokens ;;
  }

  dimension: ai_completion_tokens {
    type: number
    sql: ${TABLE}.ai_completion_tokens ;;
  }

  dimension: ai_total_tokens {
    type: number
    sql: ${TABLE}.ai_total_tokens ;;
  }

  dimension: ai_cost_micros {
    type: number
    sql: ${TABLE}.ai_cost_micros ;;
  }

  dimension: ai_llm_latency_ms {
    type: number
    sql: ${TABLE}.ai_llm_latency_ms ;;
  }

  dimension: ai_time_to_first_token_ms {
    type: number
    sql: ${TABLE}.ai_time_to_first_token_ms ;;
  }

  dimension: ai_cache_status {
    type: string
    sql: ${TABLE}.ai_cache_status ;;
  }

  dimension: ai_cache_fetch_latency_ms {
    type: number
    sql: ${TABLE}.ai_cache_fetch_latency_ms ;;
  }

  dimension: ai_embeddings_model {
    type: string
    sql: ${TABLE}.ai_embeddings_model ;;
  }

  dimension: ai_guardrail_blocks {
    type: number
    sql: ${TABLE}.ai_guardrail_blocks ;;
  }

  dimension: ai_guardrail {
    type: string
    sql: ${TABLE}.ai_guardrail ;;
  }

  dimension: ai_mcp_tool_calls {
    type: number
    sql: ${TABLE}.ai_mcp_tool_calls ;;
  }

  dimension: ai_mcp_tool {
    type: string
    sql: ${TABLE}.ai_mcp_tool ;;
  }

  dimension: ai_calls {
    type: number
    sql: ${TABLE}.ai_calls ;;
  }

  dimension: ai_unreadable {
    type: number
    sql: ${TABLE}.ai_unreadable ;;
  }
}
