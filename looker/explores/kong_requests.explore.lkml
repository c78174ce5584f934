# The requests, one row each. Single-table on purpose: with no join to fan
# out, Looker keeps percentile measures as plain percentiles on every
# dialect.
include: "/explores/kong_looker_base.explore.lkml"
include: "/views/refined/kong_looker_requests.view.lkml"

explore: kong_requests {
  extends: [kong_looker_base]
  from: kong_looker_requests
  label: "Kong requests"
  view_label: "Requests"
  description: "Every request Kong served or refused: traffic, errors, latency, identity and agents."

  # A time window keeps queries on the started_at index (or partitions).
  always_filter: {
    filters: [kong_looker.started_date: "7 days"]
  }

  # Hourly route x status x consumer rollup. Counts and sums only (averages
  # are sums over sums); percentiles are not additive and always read the
  # table. The access keys are dimensions so that filtered users can use
  # the rollup too.
  aggregate_table: hourly_route_status_consumer {
    query: {
      dimensions: [
        kong_looker.started_hour,
        kong_looker.workspace,
        kong_looker.service_name,
        kong_looker.route_name,
        kong_looker.status,
        kong_looker.consumer_username,
        kong_looker.team_access_key,
        kong_looker.consumer_group_access_key
      ]
      measures: [
        kong_looker.request_count,
        kong_looker.stored_row_count,
        kong_looker.error_5xx_count,
        kong_looker.error_4xx_count,
        kong_looker.auth_failure_count,
        kong_looker.upstream_request_count,
        kong_looker.request_bytes_total,
        kong_looker.response_bytes_total,
        kong_looker.latency_total_weighted_ms,
        kong_looker.latency_upstream_weighted_ms,
        kong_looker.latency_gateway_weighted_ms,
        kong_looker.latency_total_avg_ms,
        kong_looker.latency_upstream_avg_ms,
        kong_looker.latency_gateway_avg_ms
      ]
      timezone: "UTC"
    }
    materialization: {
      datagroup_trigger: kong_looker_new_data
    }
  }
}
