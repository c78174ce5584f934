# The requests with one row per (request, consumer group): a consumer in
# gold and beta appears under both, and a request without a group once,
# with no group. Group by or filter on Consumer group: summed across
# groups, a request counts once per group it belongs to.
include: "/views/refined/kong_looker_requests.view.lkml"
include: "/views/refined/kong_looker_requests_ai.view.lkml"

view: kong_looker_requests_by_group {
  extends: [kong_looker_requests]

  # consumer_groups is a comma-separated list; each dialect splits it its
  # own way, keeping requests without a group.
  sql_table_name: (
    {% if _dialect._name contains 'clickhouse' %}
    SELECT r.*, nullIf(g, '') AS consumer_group
    FROM @{SCHEMA_NAME}.@{REQUESTS_TABLE} AS r
    ARRAY JOIN splitByChar(',', coalesce(r.consumer_groups, '')) AS g
    {% elsif _dialect._name == 'bigquery_standard_sql' %}
    SELECT r.*, g AS consumer_group
    FROM @{SCHEMA_NAME}.@{REQUESTS_TABLE} AS r
    LEFT JOIN UNNEST(SPLIT(r.consumer_groups, ',')) AS g
    {% elsif _dialect._name == 'snowflake' %}
    SELECT r.*, g.value::string AS consumer_group
    FROM @{SCHEMA_NAME}.@{REQUESTS_TABLE} AS r,
      LATERAL FLATTEN(input => SPLIT(r.consumer_groups, ','), outer => true) AS g
    {% else %}
    SELECT r.*, g.consumer_group
    FROM @{SCHEMA_NAME}.@{REQUESTS_TABLE} AS r
      LEFT JOIN LATERAL unnest(string_to_array(r.consumer_groups, ',')) AS g(consumer_group) ON TRUE
    {% endif %}
  ) ;;

  dimension: consumer_group {
    label: "Consumer group"
    group_label: "Identity"
    description: "One Kong consumer group of the caller; empty for callers in no group."
    type: string
    sql: ${TABLE}.consumer_group ;;
    drill_fields: [consumer_username, route_name, status]
  }

  # Here a row is one group, so a user sees the groups they are granted and
  # not the caller's other groups.
  dimension: consumer_group_access_key {
    hidden: yes
    type: string
    sql: '|' || COALESCE(${consumer_group}, '') || '|' ;;
  }
}
