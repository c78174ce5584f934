# The committed batches with, on each, how many sequence numbers its
# producer skipped just before it that nobody accounts for. The batches
# table also holds a row for each batch its producer reported abandoning
# (state 'abandoned'): such a number is explained by the drops, not
# missing. So the window runs over every row, counting the abandoned ones
# below each, and then keeps the committed batches: the numbers between a
# batch and the committed one before it, less the abandoned among them,
# are the missing ones. Summing the per-batch count gives the right total
# for any slice (by producer, by node, by hour), which a
# MAX(sequence) - COUNT(*) measure would not.
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
      c.*,
      {% if _dialect._name contains 'clickhouse' %}
      c.sequence - 1 - lagInFrame(c.sequence, 1, 0) OVER (
        PARTITION BY c.instance_id ORDER BY c.sequence
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
      - (c.abandoned_below - lagInFrame(c.abandoned_below, 1, 0) OVER (
        PARTITION BY c.instance_id ORDER BY c.sequence
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))
      {% else %}
      c.sequence - 1 - COALESCE(LAG(c.sequence) OVER (
        PARTITION BY c.instance_id ORDER BY c.sequence), 0)
      - (c.abandoned_below - COALESCE(LAG(c.abandoned_below) OVER (
        PARTITION BY c.instance_id ORDER BY c.sequence), 0))
      {% endif %} AS missing_before
    FROM (
      SELECT
        b.*,
        SUM(CASE WHEN b.state = 'abandoned' THEN 1 ELSE 0 END) OVER (
          PARTITION BY b.instance_id ORDER BY b.sequence
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS abandoned_below
      FROM @{SCHEMA_NAME}.@{BATCHES_TABLE} AS b
    ) AS c
    WHERE c.state = 'committed'
  ) ;;

  dimension: missing_before {
    label: "Missing before this batch"
    group_label: "Batch"
    description: "Sequence numbers the producer skipped just before this batch that it did not report abandoning: batches that never arrived."
    type: number
    sql: ${TABLE}.missing_before ;;
  }

  measure: missing_batches {
    label: "Missing batches"
    description: "Batches producers cut that never arrived and that they did not report abandoning (sequence gaps nothing explains). Their records are lost unless counted in drops; abandoned batches' records are counted in Dropped: delivery failed."
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
