# Identity and access: who calls, which groups, which authentication fails
# and for whom, and how much of the traffic is AI agents. The client id
# tile needs the kong_client_identity grant; without it Looker hides it.
- dashboard: kong_identity_access
  title: "Kong identity and access"
  description: "Requests by consumer and consumer group, failed attempts by client id and by credential, auth methods, and AI agent traffic by agent family."
  layout: newspaper
  preferred_viewer: dashboards-next

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
  - name: consumer
    title: "Consumer"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config: {type: tag_list, display: popover}
    model: kong_looker
    explore: kong_requests
    field: kong_looker.consumer_username

  elements:
  - name: distinct_consumers
    title: "Consumers"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.distinct_consumers]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 0
    col: 0
    width: 6
    height: 3
  - name: distinct_client_applications
    title: "Client applications"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.distinct_client_applications]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 0
    col: 6
    width: 6
    height: 3
  - name: auth_failures
    title: "Failed attempts (401, 403)"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.auth_failure_count]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 0
    col: 12
    width: 6
    height: 3
  - name: auth_failure_rate
    title: "Failed attempt rate"
    model: kong_looker
    explore: kong_requests
    type: single_value
    fields: [kong_looker.auth_failure_rate]
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 0
    col: 18
    width: 6
    height: 3

  - name: requests_by_consumer
    title: "Requests by consumer"
    model: kong_looker
    explore: kong_requests
    type: looker_grid
    fields: [kong_looker.consumer_username, kong_looker.auth_method, kong_looker.request_count, kong_looker.error_5xx_rate, kong_looker.auth_failure_count, kong_looker.latency_total_p95_ms]
    filters:
      kong_looker.consumer_username: "-NULL"
    sorts: [kong_looker.request_count desc]
    limit: 25
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 3
    col: 0
    width: 14
    height: 8
  - name: requests_by_consumer_group
    title: "Requests by consumer group"
    note_text: "A request in two groups counts in each."
    model: kong_looker
    explore: kong_consumer_groups
    type: looker_bar
    fields: [kong_looker.consumer_group, kong_looker.request_count, kong_looker.error_5xx_rate]
    sorts: [kong_looker.request_count desc]
    limit: 25
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 3
    col: 14
    width: 10
    height: 8

  - name: failed_by_client_id
    title: "Failed attempts by client ID (restricted)"
    model: kong_looker
    explore: kong_requests
    type: looker_grid
    fields: [kong_looker.client_id, kong_looker.auth_method, kong_looker.auth_failure_count]
    filters:
      kong_looker.is_auth_failure: "Yes"
      kong_looker.client_id: "-NULL"
    sorts: [kong_looker.auth_failure_count desc]
    limit: 25
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 11
    col: 0
    width: 12
    height: 8
  - name: failed_by_credential
    title: "Failed attempts by credential"
    model: kong_looker
    explore: kong_requests
    type: looker_grid
    fields: [kong_looker.credential, kong_looker.auth_method, kong_looker.consumer_username, kong_looker.auth_failure_count]
    filters:
      kong_looker.is_auth_failure: "Yes"
      kong_looker.credential: "-NULL"
    sorts: [kong_looker.auth_failure_count desc]
    limit: 25
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 11
    col: 12
    width: 12
    height: 8

  - name: auth_methods
    title: "Auth methods"
    model: kong_looker
    explore: kong_requests
    type: looker_pie
    fields: [kong_looker.auth_method, kong_looker.request_count]
    sorts: [kong_looker.request_count desc]
    limit: 20
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 19
    col: 0
    width: 8
    height: 8
  - name: identity_trust
    title: "Verified and claimed identities"
    model: kong_looker
    explore: kong_requests
    type: looker_bar
    fields: [kong_looker.auth_method, kong_looker.trust, kong_looker.request_count]
    pivots: [kong_looker.trust]
    sorts: [kong_looker.auth_method, kong_looker.trust]
    limit: 50
    stacking: normal
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 19
    col: 8
    width: 16
    height: 8

  - name: ai_agents_over_time
    title: "AI agent traffic by agent family"
    model: kong_looker
    explore: kong_requests
    type: looker_area
    fields: [kong_looker.started_hour, kong_looker.agent_category, kong_looker.request_count]
    pivots: [kong_looker.agent_category]
    fill_fields: [kong_looker.started_hour]
    filters:
      kong_looker.is_ai_agent: "Yes"
    sorts: [kong_looker.started_hour desc, kong_looker.agent_category]
    limit: 5000
    stacking: normal
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 27
    col: 0
    width: 16
    height: 8
  - name: ai_agents
    title: "AI agents"
    model: kong_looker
    explore: kong_requests
    type: looker_grid
    fields: [kong_looker.agent_category, kong_looker.agent_name, kong_looker.request_count, kong_looker.response_bytes_total]
    filters:
      kong_looker.is_ai_agent: "Yes"
    sorts: [kong_looker.request_count desc]
    limit: 25
    listen: {time_range: kong_looker.started_time, team: kong_looker.workspace, consumer: kong_looker.consumer_username}
    row: 27
    col: 16
    width: 8
    height: 8
