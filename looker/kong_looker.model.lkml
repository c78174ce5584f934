# The kong_looker model: explores over the collector's tables, their
# dashboards, the datagroup that refreshes them, and the grant that guards
# client identifiers.

# @{CONNECTION_NAME}: manifest.lkml (override required).
connection: "@{CONNECTION_NAME}"

include: "/explores/*.explore.lkml"
include: "/dashboards/*.dashboard.lookml"

# The collector commits each filter batch with its row in the batches
# table, so the newest commit time changes exactly when new data lands.
# Looker polls the trigger on the connection's datagroup schedule. The
# cache age is a fallback for when the trigger cannot change: a store that
# only receives http-log entries (those write no batch rows), or a broken
# trigger query.
datagroup: kong_looker_new_data {
  label: "New Kong data"
  description: "Changes when the kong-looker collector commits a batch."
  sql_trigger: SELECT MAX(committed_at) FROM @{SCHEMA_NAME}.@{BATCHES_TABLE} ;;
  max_cache_age: "1 hour"
}

persist_with: kong_looker_new_data

# Client ids, token subjects and client addresses identify people and
# machines; only users whose kong_data_role is one of these see them.
access_grant: kong_client_identity {
  user_attribute: kong_data_role
  allowed_values: ["security", "platform"]
}
