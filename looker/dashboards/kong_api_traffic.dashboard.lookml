# API traffic: volume, errors, latency spikes, and the busiest and slowest
# routes. Every tile reads the kong_requests explore, so each viewer sees
# only their team's slice.
- dashboard: kong_api_traffic
  title: "Kong API traffic"
  description: "Requests and errors over time, latency spikes, top routes and services, and the slowest routes."
  layout: newspaper
  preferred_viewer: dashboards-next
  crossfilter_enabled: true

  filters:
  - name: time_range
    title: "Time range"
    type: field_filter
    default_value: "24 hours"
    allow_multiple_values: true
    required: false
    ui_config: {type: relative_timeframes, display: inline}
    model: kong_looker
    explore: kong_requests
    field: kong_looker.started_time
  - name: team
    title: "Team"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config: {type: tag_list, display: popover}
    model: kong_looker
    explore: kong_requests
    field: kong_looker.workspace
  - name: service
    title: "Service"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config: {type: tag_list, display: popover}
    model: kong_looker
    explore: kong_requests
    field: kong_looker.service_name
  - name: route
    title: "Route"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config: {type: tag_list, display: popover}
    model: kong_looker
    explore: kong_requests
    field: kong_looker.route_name

  elements:
  - name: requests
    title: "Requests"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.request_count]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 0
    col: 0
    width: 4
    height: 3
  - name: requests_per_second
    title: "Requests per second"
    note_text: "Over the selected time range, up to now."
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.requests_per_second]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 0
    col: 4
    width: 4
    height: 3
  - name: error_5xx_rate
    title: "5xx error rate"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.error_5xx_rate]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 0
    col: 8
    width: 4
    height: 3
  - name: error_4xx_rate
    title: "4xx error rate"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.error_4xx_rate]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 0
    col: 12
    width: 4
    height: 3
  - name: latency_p95
    title: "p95 latency (ms)"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.latency_total_p95_ms]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 0
    col: 16
    width: 4
    height: 3
  - name: latency_p99
    title: "p99 latency (ms)"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.latency_total_p99_ms]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 0
    col: 20
    width: 4
    height: 3

  - name: requests_and_errors
    title: "Requests and errors over time"
    model: kong_looker
    explore: kong_requests
    type: looker_line
    fields: [kong_looker.started_hour, kong_looker.request_count, kong_looker.error_5xx_count, kong_looker.error_4xx_count]
    fill_fields: [kong_looker.started_hour]
    sorts: [kong_looker.started_hour desc]
    limit: 5000
    y_axes: [{label: Requests, orientation: left, series: [{id: kong_looker.request_count}]},
      {label: Errors, orientation: right, series: [{id: kong_looker.error_5xx_count}, {id: kong_looker.error_4xx_count}]}]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 3
    col: 0
    width: 24
    height: 7

  - name: latency_spikes
    title: "Latency spikes: p95 and p99 by minute (ms)"
    model: kong_looker
    explore: kong_requests
    type: looker_line
    fields: [kong_looker.started_minute, kong_looker.latency_total_p95_ms, kong_looker.latency_total_p99_ms]
    sorts: [kong_looker.started_minute desc]
    limit: 5000
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 10
    col: 0
    width: 24
    height: 7

  - name: top_routes
    title: "Top routes"
    model: kong_looker
    explore: kong_requests
    type: looker_grid
    fields: [kong_looker.route_name, kong_looker.service_name, kong_looker.request_count, kong_looker.requests_per_second, kong_looker.error_5xx_rate, kong_looker.latency_total_p95_ms]
    sorts: [kong_looker.request_count desc]
    limit: 15
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 17
    col: 0
    width: 14
    height: 8
  - name: top_services
    title: "Top services"
    model: kong_looker
    explore: kong_requests
    type: looker_bar
    fields: [kong_looker.service_name, kong_looker.request_count, kong_looker.error_5xx_count]
    sorts: [kong_looker.request_count desc]
    limit: 10
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 17
    col: 14
    width: 10
    height: 8

  - name: slowest_routes
    title: "Slowest routes (p95, at least 20 requests)"
    model: kong_looker
    explore: kong_requests
    type: looker_grid
    fields: [kong_looker.route_name, kong_looker.service_name, kong_looker.latency_total_p95_ms, kong_looker.latency_total_p99_ms, kong_looker.latency_upstream_p95_ms, kong_looker.latency_gateway_p95_ms, kong_looker.request_count]
    filters:
      kong_looker.request_count: ">=20"
    sorts: [kong_looker.latency_total_p95_ms desc]
    limit: 15
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, service: kong_looker.service_name, route: kong_looker.route_name}
    row: 25
    col: 0
    width: 24
    height: 8
