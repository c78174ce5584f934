# The batches with, on each, how many sequence numbers its producer skipped
# just before it. A skipped number is a batch that never arrived; summing
# the per-batch count gives the right total for any slice (by producer, by
# node, by hour), which a MAX(sequence) - COUNT(*) measure would not.
include: "/views/refined/kong_looker_batches.view.lkml"
include: "/views/common/kong_looker.view.lkml"

view: kong_looker_batch_health {
  # Gateway-wide rows: kong_looker's access keys put them in no team, so
  # only users granted every team and group see pipeline health.
  extends: [kong_looker, kong_looker_batches]

  # ClickHouse releases before 24 lack LAG; lagInFrame over the whole
  # partition is the same.
  sql_table_name: (
    SELECT
      b.*,
      {% if _dialect._name contains 'clickhouse' %}
      b.sequence - 1 - lagInFrame(b.sequence, 1, 0) OVER (
        PARTITION BY b.instance_id ORDER BY b.sequence
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
      {% else %}
      b.sequence - 1 - COALESCE(LAG(b.sequence) OVER (
        PARTITION BY b.instance_id ORDER BY b.sequence), 0)
      {% endif %} AS missing_before
    FROM @{SCHEMA_NAME}.@{BATCHES_TABLE} AS b
  ) ;;

  dimension: missing_before {
    label: "Missing before this batch"
    group_label: "Batch"
    description: "Sequence numbers the producer skipped just before this batch: batches that never arrived."
    type: number
    sql: ${TABLE}.missing_before ;;
  }

  measure: missing_batches {
    label: "Missing batches"
    description: "Batches producers cut that never arrived (sequence gaps). Their records are lost unless counted in drops."
    type: sum
    sql: ${missing_before} ;;
    value_format_name: decimal_0
    drill_fields: [instance_id, node_id, sequence, missing_before, committed_time]
  }

  measure: gap_count {
    label: "Sequence gaps"
    description: "Places where one or more consecutive batches are missing."
    type: sum
    sql: CASE WHEN ${missing_before} > 0 THEN 1 ELSE 0 END ;;
    value_format_name: decimal_0
    drill_fields: [instance_id, node_id, sequence, missing_before, committed_time]
  }
}
