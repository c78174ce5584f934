# Mirrors the collector's kong_looker_batches table, one field per column
# in the table's order. Everything is hidden here; views/refined/ exposes,
# labels and measures it.
view: kong_looker_batches {
  # @{SCHEMA_NAME}, @{BATCHES_TABLE}: manifest.lkml.
  sql_table_name: @{SCHEMA_NAME}.@{BATCHES_TABLE} ;;
  fields_hidden_by_default: yes

  dimension: instance_id {
    type: string
    sql: ${TABLE}.instance_id ;;
  }

  dimension: sequence {
    type: number
    sql: ${TABLE}.sequence ;;
  }

  dimension: node_id {
    type: string
    sql: ${TABLE}.node_id ;;
  }

  dimension: filter_version {
    type: string
    sql: ${TABLE}.filter_version ;;
  }

  dimension: kong_version {
    type: string
    sql: ${TABLE}.kong_version ;;
  }

  dimension: generation {
    type: number
    sql: ${TABLE}.generation ;;
  }

  dimension: records {
    type: number
    sql: ${TABLE}.records ;;
  }

  dimension: drops_buffer_full {
    type: number
    sql: ${TABLE}.drops_buffer_full ;;
  }

  dimension: drops_dispatch_failed {
    type: number
    sql: ${TABLE}.drops_dispatch_failed ;;
  }

  dimension: drops_capture_error {
    type: number
    sql: ${TABLE}.drops_capture_error ;;
  }

  dimension: drops_instance_reset {
    type: number
    sql: ${TABLE}.drops_instance_reset ;;
  }

  dimension_group: cut {
    type: time
    timeframes: [raw, time, minute, hour, date, week, month]
    sql: ${TABLE}.cut_at ;;
  }

  dimension_group: received {
    type: time
    timeframes: [raw, time, minute, hour, date, week, month]
    sql: ${TABLE}.received_at ;;
  }

  dimension_group: committed {
    type: time
    timeframes: [raw, time, minute, hour, date, week, month]
    sql: ${TABLE}.committed_at ;;
  }

  dimension: state {
    type: string
    sql: ${TABLE}.state ;;
  }
}
