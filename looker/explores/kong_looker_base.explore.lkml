# Every explore extends this one, so none runs without the access filters.
# Each sets from: to its own view and keeps this view_name, so the filters'
# fields resolve in all of them (see views/common/kong_looker.view.lkml).
include: "/views/common/kong_looker.view.lkml"

explore: kong_looker_base {
  extension: required
  view_name: kong_looker

  # The team label (the filter's workspace setting, or http-log's
  # kong_looker_team). kong_team is a "String filter (advanced)" user
  # attribute: commerce, or commerce,platform, or % for every team.
  access_filter: {
    field: kong_looker.team_access_key
    user_attribute: kong_team
  }

  # The caller's Kong consumer groups. kong_consumer_groups is a "String
  # filter (advanced)" user attribute of patterns on the bar-delimited list:
  # %|gold|% (members of gold), %|gold|%,%|beta|% (gold or beta), adding ||
  # for callers in no group, or % for everything.
  access_filter: {
    field: kong_looker.consumer_group_access_key
    user_attribute: kong_consumer_groups
  }
}
