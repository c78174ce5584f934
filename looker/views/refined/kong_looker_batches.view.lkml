# Exposes the batches table: one row per filter batch the collector
# committed, with the drops its producer reported since the batch before.
# The table also holds a row (state 'abandoned', no records, no drops) for
# each batch a producer reported giving up on; kong_looker_batch_health,
# the view the explore reads, leaves those out and uses them only to tell
# explained gaps from missing batches.
include: "/views/raw/kong_looker_batches.view.lkml"

view: +kong_looker_batches {

  dimension: instance_id {
    hidden: no
    label: "Producer"
    group_label: "Producer"
    description: "The filter instance (one per Kong worker, new at every restart) that sent the batch."
    drill_fields: [sequence, committed_time, records]
  }

  dimension: node_id {
    hidden: no
    label: "Kong node"
    group_label: "Producer"
    description: "Kong's node id; empty when the filter could not read it."
  }

  dimension: filter_version {
    hidden: no
    label: "Filter version"
    group_label: "Producer"
    description: "Version of the kong_looker filter."
  }

  dimension: kong_version {
    hidden: no
    label: "Kong version"
    group_label: "Producer"
    description: "Version of Kong Gateway."
  }

  dimension: sequence {
    hidden: no
    label: "Sequence"
    group_label: "Batch"
    description: "The batch's number for its producer, from 1 up. A number with no batch, and that the producer did not report abandoning, is a batch that never arrived."
    value_format_name: id
  }

  dimension: state {
    label: "Batch state"
    group_label: "Batch"
    description: "committed: the collector stored the batch. abandoned: its producer reported giving up on it (its records are in Dropped: delivery failed)."
  }

  dimension: generation {
    hidden: no
    label: "Dictionary generation"
    group_label: "Batch"
    description: "The producer's string dictionary generation the batch refers to."
  }

  dimension: records {
    hidden: no
    label: "Records in batch"
    group_label: "Batch"
    description: "Requests the batch carried."
  }

  dimension_group: cut {
    hidden: no
    label: "Batch cut"
    description: "When the producer sealed the batch (UTC as stored)."
  }

  dimension_group: received {
    hidden: no
    label: "Batch received"
    description: "When the collector received the batch (UTC as stored)."
  }

  dimension_group: committed {
    hidden: no
    label: "Batch committed"
    description: "When the collector committed the batch (UTC as stored)."
  }

  dimension: delivery_seconds {
    label: "Delivery time (s)"
    group_label: "Batch"
    description: "From the producer cutting the batch to the collector committing it, retries included."
    type: number
    sql: {% if _dialect._name contains 'clickhouse' %}
           dateDiff('millisecond', ${cut_raw}, ${committed_raw}) / 1000.0
         {% elsif _dialect._name == 'bigquery_standard_sql' %}
           TIMESTAMP_DIFF(${committed_raw}, ${cut_raw}, MILLISECOND) / 1000.0
         {% elsif _dialect._name == 'snowflake' %}
           DATEDIFF('millisecond', ${cut_raw}, ${committed_raw}) / 1000.0
         {% else %}
           EXTRACT(EPOCH FROM ${committed_raw} - ${cut_raw})
         {% endif %} ;;
    value_format_name: decimal_3
  }

  set: batch_detail {
    fields: [instance_id, node_id, sequence, committed_time, records, drops_buffer_full, drops_dispatch_failed, drops_capture_error, drops_instance_reset]
  }

  # --- measures --------------------------------------------------------

  measure: batch_count {
    label: "Batches"
    description: "Batches committed."
    type: count
    value_format_name: decimal_0
    drill_fields: [batch_detail*]
  }

  measure: producer_count {
    label: "Producers"
    description: "Filter instances that committed a batch."
    type: count_distinct
    sql: ${instance_id} ;;
    value_format_name: decimal_0
    drill_fields: [instance_id, node_id, batch_count]
  }

  measure: node_count {
    label: "Kong nodes"
    description: "Kong nodes that committed a batch."
    type: count_distinct
    sql: ${node_id} ;;
    value_format_name: decimal_0
  }

  measure: records_total {
    label: "Records delivered"
    description: "Requests carried by committed batches."
    type: sum
    sql: ${records} ;;
    value_format_name: decimal_0
  }

  measure: drops_buffer_full_total {
    label: "Dropped: buffer full"
    group_label: "Drops"
    description: "Records the producer dropped because its memory cap was reached."
    type: sum
    sql: ${drops_buffer_full} ;;
    value_format_name: decimal_0
    drill_fields: [batch_detail*]
  }

  measure: drops_dispatch_failed_total {
    label: "Dropped: delivery failed"
    group_label: "Drops"
    description: "Records in batches the producer gave up on (refused, or retried past max_retry_age_ms)."
    type: sum
    sql: ${drops_dispatch_failed} ;;
    value_format_name: decimal_0
    drill_fields: [batch_detail*]
  }

  measure: drops_capture_error_total {
    label: "Dropped: capture error"
    group_label: "Drops"
    description: "Requests the filter could not record."
    type: sum
    sql: ${drops_capture_error} ;;
    value_format_name: decimal_0
    drill_fields: [batch_detail*]
  }

  measure: drops_instance_reset_total {
    label: "Dropped: instance reset"
    group_label: "Drops"
    description: "Records lost with a Wasm instance that restarted."
    type: sum
    sql: ${drops_instance_reset} ;;
    value_format_name: decimal_0
    drill_fields: [batch_detail*]
  }

  measure: drops_total {
    label: "Dropped: all reasons"
    group_label: "Drops"
    description: "Records producers reported dropping, every reason."
    type: number
    # Bracketed: drop_rate divides it.
    sql: (${drops_buffer_full_total} + ${drops_dispatch_failed_total} + ${drops_capture_error_total} + ${drops_instance_reset_total}) ;;
    value_format_name: decimal_0
  }

  measure: drop_rate {
    label: "Drop rate"
    group_label: "Drops"
    description: "Dropped records over dropped plus delivered."
    type: number
    sql: ${drops_total} / NULLIF(${drops_total} + ${records_total}, 0) ;;
    value_format_name: percent_3
  }

  measure: freshness_lag_seconds {
    label: "Freshness lag (s)"
    description: "Seconds since the newest commit. Steady traffic keeps it near the filter's flush interval; a growing lag means batches stopped arriving."
    type: number
    sql: {% if _dialect._name contains 'clickhouse' %}
           dateDiff('millisecond', MAX(${committed_raw}), now64(3)) / 1000.0
         {% elsif _dialect._name == 'bigquery_standard_sql' %}
           TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), MAX(${committed_raw}), MILLISECOND) / 1000.0
         {% elsif _dialect._name == 'snowflake' %}
           DATEDIFF('millisecond', MAX(${committed_raw}), SYSDATE()) / 1000.0
         {% else %}
           EXTRACT(EPOCH FROM CURRENT_TIMESTAMP - MAX(${committed_raw}))
         {% endif %} ;;
    value_format_name: decimal_1
  }

  measure: delivery_seconds_avg {
    label: "Delivery time average (s)"
    description: "Average time from cut to commit."
    type: average
    sql: ${delivery_seconds} ;;
    value_format_name: decimal_3
  }

  measure: delivery_seconds_max {
    label: "Delivery time max (s)"
    description: "Longest time from cut to commit."
    type: max
    sql: ${delivery_seconds} ;;
    value_format_name: decimal_3
  }
}
