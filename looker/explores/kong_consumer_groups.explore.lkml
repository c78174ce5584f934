# The requests by Kong consumer group: one row per request and group. Also
# single-table, so percentiles stay plain.
include: "/explores/kong_looker_base.explore.lkml"
include: "/views/derived/kong_looker_requests_by_group.view.lkml"

explore: kong_consumer_groups {
  extends: [kong_looker_base]
  from: kong_looker_requests_by_group
  label: "Kong requests by consumer group"
  view_label: "Requests"
  description: "Traffic, errors and latency per Kong consumer group. A request in two groups counts in each."

  always_filter: {
    filters: [kong_looker.started_date: "7 days"]
  }
}
