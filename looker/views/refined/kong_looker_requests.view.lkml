# Exposes the requests table: labels, descriptions, derived dimensions and
# the measures. Counts and sums weigh each row by sample_weight, because a
# row of a sampled chain stands for 1/sample_rate requests.
include: "/views/raw/kong_looker_requests.view.lkml"
include: "/views/common/kong_looker.view.lkml"

view: +kong_looker_requests {
  extends: [kong_looker]

  # Access keys (see views/common/kong_looker.view.lkml). Never NULL, so the
  # user attribute value % matches every row, unlabeled ones included.
  dimension: team_access_key {
    hidden: yes
    type: string
    sql: COALESCE(${workspace}, '') ;;
  }

  dimension: consumer_group_access_key {
    hidden: yes
    type: string
    sql: '|' || REPLACE(COALESCE(${consumer_groups}, ''), ',', '|') || '|' ;;
  }

  # --- time ------------------------------------------------------------

  dimension_group: started {
    hidden: no
    label: "Request"
    description: "When Kong started the request, in UTC as stored; Looker shows it in the query time zone."
  }

  # --- route -----------------------------------------------------------

  dimension: workspace {
    hidden: no
    label: "Team"
    group_label: "Route"
    description: "The team label: the filter's workspace setting, or kong_looker_team (else Kong's workspace) on http-log rows. Access is filtered on it."
  }

  dimension: route_name {
    hidden: no
    label: "Route"
    group_label: "Route"
    description: "Kong route name; empty when no route matched (Kong answered 404)."
    drill_fields: [service_name, method, path, status]
  }

  dimension: route_id {
    hidden: no
    label: "Route ID"
    group_label: "Route"
    description: "Kong route id (a UUID)."
  }

  dimension: service_name {
    hidden: no
    label: "Service"
    group_label: "Route"
    description: "Kong service name."
    drill_fields: [route_name, path, status]
  }

  dimension: service_id {
    hidden: no
    label: "Service ID"
    group_label: "Route"
    description: "Kong service id (a UUID)."
  }

  dimension: method {
    hidden: no
    label: "Method"
    group_label: "Route"
    description: "HTTP method."
  }

  dimension: host {
    hidden: no
    label: "Host"
    group_label: "Route"
    description: "The request's Host header."
  }

  dimension: path {
    hidden: no
    label: "Path template"
    group_label: "Route"
    description: "The path with ids replaced by {id} and the query dropped."
  }

  # --- response --------------------------------------------------------

  dimension: status {
    hidden: no
    label: "Status"
    group_label: "Response"
    description: "HTTP status sent to the client."
    value_format_name: id
  }

  dimension: status_class {
    label: "Status class"
    group_label: "Response"
    description: "1xx to 5xx."
    type: string
    sql: CASE
           WHEN ${status} >= 500 THEN '5xx'
           WHEN ${status} >= 400 THEN '4xx'
           WHEN ${status} >= 300 THEN '3xx'
           WHEN ${status} >= 200 THEN '2xx'
           WHEN ${status} >= 100 THEN '1xx'
         END ;;
  }

  dimension: is_server_error {
    label: "Is 5xx"
    group_label: "Response"
    description: "Status 500 to 599."
    type: yesno
    sql: ${status} >= 500 ;;
  }

  dimension: is_client_error {
    label: "Is 4xx"
    group_label: "Response"
    description: "Status 400 to 499."
    type: yesno
    sql: ${status} >= 400 AND ${status} < 500 ;;
  }

  dimension: is_auth_failure {
    label: "Is auth failure"
    group_label: "Response"
    description: "Status 401 (not authenticated) or 403 (not allowed)."
    type: yesno
    sql: ${status} IN (401, 403) ;;
  }

  dimension: response_source {
    hidden: no
    label: "Answered by"
    group_label: "Response"
    description: "upstream, or kong when Kong produced the response itself (auth refusals, rate limits, no route)."
  }

  # --- timing ----------------------------------------------------------

  dimension: latency_total_ms {
    label: "Total latency (ms)"
    group_label: "Timing"
    description: "From Kong reading the first byte to sending the last, in milliseconds."
    type: number
    sql: ${latency_total_us} / 1000.0 ;;
    value_format_name: decimal_1
  }

  dimension: latency_upstream_ms {
    label: "Upstream latency (ms)"
    group_label: "Timing"
    description: "Time spent waiting on the upstream, in milliseconds; empty when Kong answered itself."
    type: number
    sql: ${latency_upstream_us} / 1000.0 ;;
    value_format_name: decimal_1
  }

  dimension: latency_gateway_ms {
    label: "Gateway latency (ms)"
    group_label: "Timing"
    description: "Total minus upstream latency: Kong's own time, plugins included. The whole latency when Kong answered itself."
    type: number
    # Bracketed: measures multiply it by the sample weight.
    sql: (${latency_total_ms} - COALESCE(${latency_upstream_ms}, 0)) ;;
    value_format_name: decimal_1
  }

  # --- size ------------------------------------------------------------

  dimension: request_bytes {
    hidden: no
    label: "Request bytes"
    group_label: "Size"
    description: "Bytes received from the client, headers included."
  }

  dimension: response_bytes {
    hidden: no
    label: "Response bytes"
    group_label: "Size"
    description: "Bytes sent to the client, headers included."
  }

  # --- identity --------------------------------------------------------

  dimension: auth_method {
    hidden: no
    label: "Auth method"
    group_label: "Identity"
    description: "The strongest evidence of who called: kong_consumer, key_auth, basic, jwt, oidc, mtls, aws_sigv4, hmac, oauth2 or trusted_proxy; empty when anonymous."
  }

  dimension: trust {
    hidden: no
    label: "Identity trust"
    group_label: "Identity"
    description: "verified when Kong checked the identity, claimed when the client only asserted it."
  }

  dimension: anonymous {
    hidden: no
    label: "Kong anonymous consumer"
    group_label: "Identity"
    description: "Kong mapped the request to its configured anonymous consumer."
  }

  dimension: consumer_username {
    hidden: no
    label: "Consumer"
    group_label: "Identity"
    description: "Kong consumer username (or the token's or certificate's user where no consumer exists)."
    drill_fields: [route_name, auth_method, status]
  }

  dimension: consumer_id {
    hidden: no
    label: "Consumer ID"
    group_label: "Identity"
    description: "Kong consumer id."
  }

  dimension: consumer_custom_id {
    hidden: no
    label: "Consumer custom ID"
    group_label: "Identity"
    description: "Kong consumer custom_id."
  }

  dimension: credential {
    hidden: no
    label: "Credential"
    group_label: "Identity"
    description: "Which credential was presented (key-auth id, Basic user, SigV4 access key id, certificate fingerprint); never the secret."
  }

  dimension: consumer_groups {
    hidden: no
    label: "Consumer groups (list)"
    group_label: "Identity"
    description: "The consumer's Kong consumer groups, comma-separated. For one row per group, use the Consumer groups explore."
  }

  dimension: issuer {
    hidden: no
    label: "Token issuer"
    group_label: "Identity"
    description: "iss of the JWT or OIDC token."
  }

  # Identifiers of people and machines: behind the model's access grant.
  dimension: subject {
    hidden: no
    label: "Subject"
    group_label: "Identity (restricted)"
    description: "Token sub or certificate subject. Restricted: needs kong_data_role security or platform."
    required_access_grants: [kong_client_identity]
  }

  dimension: client_id {
    hidden: no
    label: "Client ID"
    group_label: "Identity (restricted)"
    description: "OAuth client id of the calling application. Restricted: needs kong_data_role security or platform."
    required_access_grants: [kong_client_identity]
  }

  dimension: client_address {
    hidden: no
    label: "Client address"
    group_label: "Identity (restricted)"
    description: "Client IP as the filter kept it (whole, truncated or hashed). Restricted: needs kong_data_role security or platform."
    required_access_grants: [kong_client_identity]
  }

  # --- agent -----------------------------------------------------------

  dimension: agent_category {
    hidden: no
    label: "Agent family"
    group_label: "Agent"
    description: "What the User-Agent says the caller is: browser, cli, library, api_tool, monitor, search_crawler, ai_crawler, ai_search, ai_assistant, mcp_client or unknown."
    drill_fields: [agent_name]
  }

  dimension: agent_name {
    hidden: no
    label: "Agent"
    group_label: "Agent"
    description: "The product named by the User-Agent, such as curl, GPTBot or ClaudeBot."
  }

  dimension: is_ai_agent {
    label: "Is AI agent"
    group_label: "Agent"
    description: "AI crawlers, AI search, AI assistants and MCP clients."
    type: yesno
    sql: ${agent_category} IN ('ai_crawler', 'ai_search', 'ai_assistant', 'mcp_client') ;;
  }

  # --- collector -------------------------------------------------------

  dimension: request_id {
    hidden: no
    label: "Kong request ID"
    group_label: "Collector"
    description: "Kong's request id, the row's key across the filter and http-log."
  }

  dimension: trace_id {
    hidden: no
    label: "Trace ID"
    group_label: "Collector"
    description: "W3C trace id from traceparent."
  }

  dimension: sample_weight {
    hidden: no
    label: "Sample weight"
    group_label: "Collector"
    description: "How many requests this row stands for (1/sample_rate; 1 for 5xx, 401, 403 and http-log rows)."
  }

  dimension: origin {
    hidden: no
    label: "Origin"
    group_label: "Collector"
    description: "filter (the Wasm filter) or http_log (Kong's http-log plugin: requests refused before the filter ran)."
  }

  dimension: instance_id {
    hidden: no
    label: "Filter instance"
    group_label: "Collector"
    description: "The filter instance (one per Kong worker) that sent the row; empty on http-log rows."
  }

  dimension: batch_sequence {
    hidden: no
    label: "Batch sequence"
    group_label: "Collector"
    description: "The batch the row came in."
  }

  set: request_detail {
    fields: [started_time, workspace, route_name, method, path, status, latency_total_ms, consumer_username, agent_name, request_id]
  }

  # --- measures: volume ------------------------------------------------

  measure: request_count {
    label: "Requests"
    description: "Requests, the sum of sample weights: sampled rows count for the requests they stand for."
    type: sum
    sql: ${sample_weight} ;;
    value_format_name: decimal_0
    drill_fields: [request_detail*]
  }

  measure: stored_row_count {
    label: "Stored rows"
    description: "Rows in the table, unweighted. Equals Requests when nothing is sampled."
    type: count
    value_format_name: decimal_0
    drill_fields: [request_detail*]
  }

  measure: requests_per_second {
    label: "Requests per second"
    description: "Requests divided by the length of each row's time bucket (minute, hour, day, week, or an average month) when a request timeframe is grouped; otherwise by the request time filter's window, or without one by the span of the requests found; either way ending now at the latest."
    type: number
    sql: ${request_count} / NULLIF(
           {% if kong_looker.started_minute._is_selected %} 60.0
           {% elsif kong_looker.started_hour._is_selected %} 3600.0
           {% elsif kong_looker.started_date._is_selected %} 86400.0
           {% elsif kong_looker.started_week._is_selected %} 604800.0
           {% elsif kong_looker.started_month._is_selected %} 2629746.0
           {% else %} ${window_seconds}
           {% endif %}, 0) ;;
    value_format_name: decimal_2
  }

  # The selected window in seconds: the request time filter's bounds, else
  # the first and last request found; the end is capped at now, so a filter
  # such as "today" does not count hours still to come.
  measure: window_seconds {
    hidden: yes
    type: number
    sql: {% if _dialect._name contains 'clickhouse' %}
           dateDiff('millisecond',
             COALESCE({% date_start kong_looker.started_time %}, {% date_start kong_looker.started_date %}, MIN(${started_raw})),
             least(COALESCE({% date_end kong_looker.started_time %}, {% date_end kong_looker.started_date %}, MAX(${started_raw})), now64(3))) / 1000.0
         {% elsif _dialect._name == 'bigquery_standard_sql' %}
           TIMESTAMP_DIFF(
             LEAST(COALESCE({% date_end kong_looker.started_time %}, {% date_end kong_looker.started_date %}, MAX(${started_raw})), CURRENT_TIMESTAMP()),
             COALESCE({% date_start kong_looker.started_time %}, {% date_start kong_looker.started_date %}, MIN(${started_raw})),
             MILLISECOND) / 1000.0
         {% elsif _dialect._name == 'snowflake' %}
           DATEDIFF('millisecond',
             COALESCE({% date_start kong_looker.started_time %}, {% date_start kong_looker.started_date %}, MIN(${started_raw})),
             LEAST(COALESCE({% date_end kong_looker.started_time %}, {% date_end kong_looker.started_date %}, MAX(${started_raw})), SYSDATE())) / 1000.0
         {% else %}
           EXTRACT(EPOCH FROM
             LEAST(COALESCE({% date_end kong_looker.started_time %}, {% date_end kong_looker.started_date %}, MAX(${started_raw})), CURRENT_TIMESTAMP)
             - COALESCE({% date_start kong_looker.started_time %}, {% date_start kong_looker.started_date %}, MIN(${started_raw})))
         {% endif %} ;;
  }

  # --- measures: errors ------------------------------------------------

  measure: error_5xx_count {
    label: "5xx errors"
    description: "Requests answered 500 to 599."
    type: sum
    sql: CASE WHEN ${status} >= 500 THEN ${sample_weight} ELSE 0 END ;;
    value_format_name: decimal_0
    drill_fields: [request_detail*]
  }

  measure: error_5xx_rate {
    label: "5xx error rate"
    description: "5xx errors over requests."
    type: number
    sql: ${error_5xx_count} / NULLIF(${request_count}, 0) ;;
    value_format_name: percent_2
    drill_fields: [request_detail*]
  }

  measure: error_4xx_count {
    label: "4xx errors"
    description: "Requests answered 400 to 499, auth failures and rate limits included."
    type: sum
    sql: CASE WHEN ${status} >= 400 AND ${status} < 500 THEN ${sample_weight} ELSE 0 END ;;
    value_format_name: decimal_0
    drill_fields: [request_detail*]
  }

  measure: error_4xx_rate {
    label: "4xx error rate"
    description: "4xx errors over requests."
    type: number
    sql: ${error_4xx_count} / NULLIF(${request_count}, 0) ;;
    value_format_name: percent_2
    drill_fields: [request_detail*]
  }

  measure: auth_failure_count {
    label: "Auth failures"
    description: "Requests answered 401 or 403: failed or refused authentication and authorization attempts."
    type: sum
    sql: CASE WHEN ${status} IN (401, 403) THEN ${sample_weight} ELSE 0 END ;;
    value_format_name: decimal_0
    drill_fields: [request_detail*]
  }

  measure: auth_failure_rate {
    label: "Auth failure rate"
    description: "Auth failures over requests."
    type: number
    sql: ${auth_failure_count} / NULLIF(${request_count}, 0) ;;
    value_format_name: percent_2
  }

  # --- measures: latency -----------------------------------------------
  # Percentiles are computed by the database over stored rows; on a sampled
  # chain the always-kept 5xx, 401 and 403 rows count once each. Averages
  # are weighted. Neither is rolled up into aggregate tables as a
  # percentile: only the sums behind the averages are.

  measure: latency_total_p50_ms {
    label: "Total latency p50 (ms)"
    group_label: "Total latency"
    description: "Median total latency."
    type: percentile
    percentile: 50
    sql: ${latency_total_ms} ;;
    value_format_name: decimal_1
  }

  measure: latency_total_p95_ms {
    label: "Total latency p95 (ms)"
    group_label: "Total latency"
    description: "95th percentile of total latency."
    type: percentile
    percentile: 95
    sql: ${latency_total_ms} ;;
    value_format_name: decimal_1
    drill_fields: [request_detail*]
  }

  measure: latency_total_p99_ms {
    label: "Total latency p99 (ms)"
    group_label: "Total latency"
    description: "99th percentile of total latency."
    type: percentile
    percentile: 99
    sql: ${latency_total_ms} ;;
    value_format_name: decimal_1
    drill_fields: [request_detail*]
  }

  measure: latency_total_avg_ms {
    label: "Total latency average (ms)"
    group_label: "Total latency"
    description: "Average total latency, weighted by sample weight."
    type: number
    sql: ${latency_total_weighted_ms} / NULLIF(${request_count}, 0) ;;
    value_format_name: decimal_1
  }

  measure: latency_total_weighted_ms {
    hidden: yes
    type: sum
    sql: ${latency_total_ms} * ${sample_weight} ;;
  }

  measure: latency_upstream_p50_ms {
    label: "Upstream latency p50 (ms)"
    group_label: "Upstream latency"
    description: "Median upstream latency, over requests that reached the upstream."
    type: percentile
    percentile: 50
    sql: ${latency_upstream_ms} ;;
    value_format_name: decimal_1
  }

  measure: latency_upstream_p95_ms {
    label: "Upstream latency p95 (ms)"
    group_label: "Upstream latency"
    description: "95th percentile of upstream latency, over requests that reached the upstream."
    type: percentile
    percentile: 95
    sql: ${latency_upstream_ms} ;;
    value_format_name: decimal_1
  }

  measure: latency_upstream_p99_ms {
    label: "Upstream latency p99 (ms)"
    group_label: "Upstream latency"
    description: "99th percentile of upstream latency, over requests that reached the upstream."
    type: percentile
    percentile: 99
    sql: ${latency_upstream_ms} ;;
    value_format_name: decimal_1
  }

  measure: latency_upstream_avg_ms {
    label: "Upstream latency average (ms)"
    group_label: "Upstream latency"
    description: "Average upstream latency, weighted, over requests that reached the upstream."
    type: number
    sql: ${latency_upstream_weighted_ms} / NULLIF(${upstream_request_count}, 0) ;;
    value_format_name: decimal_1
  }

  measure: latency_upstream_weighted_ms {
    hidden: yes
    type: sum
    sql: ${latency_upstream_ms} * ${sample_weight} ;;
  }

  measure: upstream_request_count {
    label: "Requests to upstream"
    description: "Requests the upstream answered (weighted)."
    type: sum
    sql: CASE WHEN ${latency_upstream_us} IS NOT NULL THEN ${sample_weight} ELSE 0 END ;;
    value_format_name: decimal_0
  }

  measure: latency_gateway_p50_ms {
    label: "Gateway latency p50 (ms)"
    group_label: "Gateway latency"
    description: "Median of total minus upstream latency."
    type: percentile
    percentile: 50
    sql: ${latency_gateway_ms} ;;
    value_format_name: decimal_1
  }

  measure: latency_gateway_p95_ms {
    label: "Gateway latency p95 (ms)"
    group_label: "Gateway latency"
    description: "95th percentile of total minus upstream latency."
    type: percentile
    percentile: 95
    sql: ${latency_gateway_ms} ;;
    value_format_name: decimal_1
  }

  measure: latency_gateway_p99_ms {
    label: "Gateway latency p99 (ms)"
    group_label: "Gateway latency"
    description: "99th percentile of total minus upstream latency."
    type: percentile
    percentile: 99
    sql: ${latency_gateway_ms} ;;
    value_format_name: decimal_1
  }

  measure: latency_gateway_avg_ms {
    label: "Gateway latency average (ms)"
    group_label: "Gateway latency"
    description: "Average of total minus upstream latency, weighted."
    type: number
    sql: ${latency_gateway_weighted_ms} / NULLIF(${request_count}, 0) ;;
    value_format_name: decimal_1
  }

  measure: latency_gateway_weighted_ms {
    hidden: yes
    type: sum
    sql: ${latency_gateway_ms} * ${sample_weight} ;;
  }

  # --- measures: bytes -------------------------------------------------

  measure: request_bytes_total {
    label: "Bytes in"
    description: "Bytes received from clients, headers included (weighted)."
    type: sum
    sql: ${request_bytes} * ${sample_weight} ;;
    value_format_name: decimal_0
  }

  measure: response_bytes_total {
    label: "Bytes out"
    description: "Bytes sent to clients, headers included (weighted)."
    type: sum
    sql: ${response_bytes} * ${sample_weight} ;;
    value_format_name: decimal_0
  }

  # --- measures: who ---------------------------------------------------

  measure: distinct_consumers {
    label: "Distinct consumers"
    description: "Kong consumers seen. Unweighted: a consumer whose every request was sampled out is missed."
    type: count_distinct
    sql: ${consumer_id} ;;
    value_format_name: decimal_0
  }

  # Reads the column, not the restricted client_id field: a count shows no
  # identifier, so it needs no grant.
  measure: distinct_client_applications {
    label: "Distinct client applications"
    description: "OAuth client ids seen (OIDC and JWT callers). Unweighted."
    type: count_distinct
    sql: ${TABLE}.client_id ;;
    value_format_name: decimal_0
  }
}
