# The name every explore gives its base view (explores/kong_looker_base
# sets view_name: kong_looker, and each explore picks its view with from:),
# so the base explore's access filters resolve in every explore.
#
# A view an explore starts from extends this one and says which team and
# which consumer groups each of its rows belongs to. These defaults put a
# row in no team and no group: only users granted every team and every
# group (user attribute value %) see it, which is right for gateway-wide
# rows such as pipeline health.
view: kong_looker {
  extension: required

  # Matched by the kong_team user attribute, a Looker string filter:
  # "commerce", "commerce,platform", "%" (every team), "EMPTY" (unlabeled).
  dimension: team_access_key {
    hidden: yes
    type: string
    sql: '' ;;
  }

  # Matched by the kong_consumer_groups user attribute: every group between
  # bars, "|gold|beta|", and "||" when there is none, so a filter such as
  # "%|gold|%" matches a member of gold whatever its other groups.
  dimension: consumer_group_access_key {
    hidden: yes
    type: string
    sql: '||' ;;
  }
}
