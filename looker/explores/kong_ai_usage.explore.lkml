# AI Gateway usage: the requests Kong's AI plugins recorded, with tokens,
# cost, models, latency, semantic cache and guardrails. Extends the base
# explore, so the team and consumer-group access filters apply as they do
# to every other explore. Single-table, so percentiles stay plain.
include: "/explores/kong_looker_base.explore.lkml"
include: "/views/refined/kong_looker_requests_ai.view.lkml"

explore: kong_ai_usage {
  extends: [kong_looker_base]
  from: kong_looker_requests
  label: "Kong AI usage"
  view_label: "AI requests"
  description: "LLM tokens, cost and models per team, consumer and agent, with LLM latency, time to first token, semantic cache and guardrail blocks."

  sql_always_where: ${kong_looker.ai_calls} IS NOT NULL ;;

  always_filter: {
    filters: [kong_looker.started_date: "7 days"]
  }
}
