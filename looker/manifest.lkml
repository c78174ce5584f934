# kong-looker: the LookML block over the kong-looker collector's tables.
# An importing project sets these with override_constant.

project_name: "kong_looker"

# The Looker connection to the warehouse the collector writes to (or that
# its tables are copied into). Used by kong_looker.model.lkml.
constant: CONNECTION_NAME {
  value: "kong_looker"
  export: override_required
}

# The schema (BigQuery: dataset; ClickHouse: database) holding both tables.
# Used by views/raw/*.view.lkml, views/derived/*.view.lkml and the
# datagroup in kong_looker.model.lkml. The collector writes to PostgreSQL's
# default schema, public.
constant: SCHEMA_NAME {
  value: "public"
  export: override_optional
}

# One row per request. Used by views/raw/kong_looker_requests.view.lkml and
# views/derived/kong_looker_requests_by_group.view.lkml.
constant: REQUESTS_TABLE {
  value: "kong_looker_requests"
  export: override_optional
}

# One row per committed filter batch. Used by
# views/raw/kong_looker_batches.view.lkml,
# views/derived/kong_looker_batch_health.view.lkml and the datagroup's
# sql_trigger in kong_looker.model.lkml.
constant: BATCHES_TABLE {
  value: "kong_looker_batches"
  export: override_optional
}
