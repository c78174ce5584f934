# Pipeline health: is the data current and complete? Gateway-wide, so it
# shows data only to users granted every team and group.
- dashboard: kong_pipeline_health
  title: "Kong pipeline health"
  description: "Freshness of the newest commit, drops reported by producers, batches that never arrived, and batches per producer."
  layout: newspaper
  preferred_viewer: dashboards-next
  refresh: 5 minutes

  filters:
  - name: commit_time
    title: "Commit time"
    type: field_filter
    default_value: "24 hours"
    allow_multiple_values: true
    required: false
    ui_config: {type: relative_timeframes, display: inline}
    model: kong_looker
    explore: kong_pipeline_health
    field: kong_looker.committed_time
  - name: kong_node
    title: "Kong node"
    type: field_filter
    default_value: ""
    allow_multiple_values: true
    required: false
    ui_config: {type: tag_list, display: popover}
    model: kong_looker
    explore: kong_pipeline_health
    field: kong_looker.node_id

  elements:
  - name: freshness
    title: "Seconds since the newest commit"
    note_text: "Not filtered by commit time: this is how old the newest data is now."
    model: kong_looker
    explore: kong_pipeline_health
    type: single_value
    fields: [kong_looker.freshness_lag_seconds]
    listen: {kong_node: kong_looker.node_id}
    row: 0
    col: 0
    width: 6
    height: 3
  - name: missing_batches
    title: "Batches that never arrived"
    model: kong_looker
    explore: kong_pipeline_health
    type: single_value
    fields: [kong_looker.missing_batches]
    listen: {commit_time: kong_looker.committed_time, kong_node: kong_looker.node_id}
    row: 0
    col: 6
    width: 6
    height: 3
  - name: drops_total
    title: "Records dropped"
    model: kong_looker
    explore: kong_pipeline_health
    type: single_value
    fields: [kong_looker.drops_total]
    listen: {commit_time: kong_looker.committed_time, kong_node: kong_looker.node_id}
    row: 0
    col: 12
    width: 6
    height: 3
  - name: records_delivered
    title: "Records delivered"
    model: kong_looker
    explore: kong_pipeline_health
    type: single_value
    fields: [kong_looker.records_total]
    listen: {commit_time: kong_looker.committed_time, kong_node: kong_looker.node_id}
    row: 0
    col: 18
    width: 6
    height: 3

  - name: drops_by_reason
    title: "Drops by reason"
    model: kong_looker
    explore: kong_pipeline_health
    type: looker_bar
    fields: [kong_looker.drops_buffer_full_total, kong_looker.drops_dispatch_failed_total, kong_looker.drops_capture_error_total, kong_looker.drops_instance_reset_total]
    limit: 1
    listen: {commit_time: kong_looker.committed_time, kong_node: kong_looker.node_id}
    row: 3
    col: 0
    width: 8
    height: 7
  - name: drops_over_time
    title: "Drops over time"
    model: kong_looker
    explore: kong_pipeline_health
    type: looker_column
    fields: [kong_looker.committed_hour, kong_looker.drops_buffer_full_total, kong_looker.drops_dispatch_failed_total, kong_looker.drops_capture_error_total, kong_looker.drops_instance_reset_total]
    fill_fields: [kong_looker.committed_hour]
    sorts: [kong_looker.committed_hour desc]
    limit: 5000
    stacking: normal
    listen: {commit_time: kong_looker.committed_time, kong_node: kong_looker.node_id}
    row: 3
    col: 8
    width: 16
    height: 7

  - name: gaps_by_producer
    title: "Batches, gaps and drops per producer"
    model: kong_looker
    explore: kong_pipeline_health
    type: looker_grid
    fields: [kong_looker.instance_id, kong_looker.node_id, kong_looker.kong_version, kong_looker.batch_count, kong_looker.records_total, kong_looker.missing_batches, kong_looker.gap_count, kong_looker.drops_total, kong_looker.freshness_lag_seconds]
    sorts: [kong_looker.missing_batches desc, kong_looker.batch_count desc]
    limit: 100
    listen: {commit_time: kong_looker.committed_time, kong_node: kong_looker.node_id}
    row: 10
    col: 0
    width: 24
    height: 8

  - name: batches_per_producer
    title: "Batches per Kong node over time"
    model: kong_looker
    explore: kong_pipeline_health
    type: looker_column
    fields: [kong_looker.committed_hour, kong_looker.node_id, kong_looker.batch_count]
    pivots: [kong_looker.node_id]
    fill_fields: [kong_looker.committed_hour]
    sorts: [kong_looker.committed_hour desc, kong_looker.node_id]
    limit: 5000
    stacking: normal
    listen: {commit_time: kong_looker.committed_time, kong_node: kong_looker.node_id}
    row: 18
    col: 0
    width: 12
    height: 7
  - name: delivery_time
    title: "Delivery time, cut to commit (s)"
    model: kong_looker
    explore: kong_pipeline_health
    type: looker_line
    fields: [kong_looker.committed_hour, kong_looker.delivery_seconds_avg, kong_looker.delivery_seconds_max]
    sorts: [kong_looker.committed_hour desc]
    limit: 5000
    listen: {commit_time: kong_looker.committed_time, kong_node: kong_looker.node_id}
    row: 18
    col: 12
    width: 12
    height: 7
