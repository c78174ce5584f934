# The collector's own accounting: freshness, drops by reason, sequence gaps
# and batches per producer.
include: "/explores/kong_looker_base.explore.lkml"
include: "/views/derived/kong_looker_batch_health.view.lkml"

explore: kong_pipeline_health {
  extends: [kong_looker_base]
  from: kong_looker_batch_health
  label: "Kong pipeline health"
  view_label: "Batches"
  description: "Is the data complete and current? Batches committed per producer, drops reported by reason, batches that never arrived, and how old the newest data is."
}
