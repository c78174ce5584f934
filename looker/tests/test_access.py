"""Governance: every explore carries both access filters through its base,
the filters select what the README promises on real data, and client
identifiers sit behind the access grant."""

import pytest

from lkcheck import checks
from lkcheck.render import Renderer

ALL = {"kong_team": "%", "kong_consumer_groups": "%"}


def test_every_explore_extends_the_filtered_base(project):
    problems = checks.access_problems(project)
    assert not problems, "\n".join(problems)
    assert {e.name for e in project.concrete_explores()} == {"kong_requests", "kong_consumer_groups", "kong_pipeline_health", "kong_ai_usage"}
    base = project.explores["kong_looker_base"]
    assert base.extension_required
    assert {(a["field"], a["user_attribute"]) for a in base.access_filters} == {
        ("kong_looker.team_access_key", "kong_team"),
        ("kong_looker.consumer_group_access_key", "kong_consumer_groups"),
    }


def test_client_identifiers_need_the_grant(project):
    grants = {g["name"]: g for g in project.model["access_grants"]}
    assert grants["kong_client_identity"]["user_attribute"] == "kong_data_role"
    fields = project.views["kong_looker_requests"].fields()
    for name in checks.RESTRICTED_COLUMNS:
        assert fields[name].params.get("required_access_grants") == ["kong_client_identity"], name
    problems = checks.grant_problems(project)
    assert not problems, "\n".join(problems)


def count(pg, project, explore, attrs):
    r = Renderer(project, explore, "postgres")
    return float(pg.rows(r.query([], ["request_count"], user_attributes=attrs))[0][0])


def has(groups, g):
    return g in (groups or [])


@pytest.mark.parametrize(
    "team,groups,expect",
    [
        ("%", "%", lambda r: True),
        ("commerce", "%", lambda r: r["workspace"] == "commerce"),
        ("commerce,platform", "%", lambda r: r["workspace"] in ("commerce", "platform")),
        ("%", "%|gold|%", lambda r: has(r["consumer_groups"], "gold")),
        ("%", "%|gold|%,%|beta|%", lambda r: has(r["consumer_groups"], "gold") or has(r["consumer_groups"], "beta")),
        ("%", "||", lambda r: not r["consumer_groups"]),
        ("%", "||,%|partners|%", lambda r: not r["consumer_groups"] or has(r["consumer_groups"], "partners")),
        ("discovery", "%|silver|%", lambda r: r["workspace"] == "discovery" and has(r["consumer_groups"], "silver")),
        ("-%", "%", lambda r: False),
        ("%", "-%", lambda r: False),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_access_filters_select_the_right_requests(pg, pg_project, truth_rows, team, groups, expect):
    got = count(pg, pg_project, "kong_requests", {"kong_team": team, "kong_consumer_groups": groups})
    want = sum(r["sample_weight"] for r in truth_rows if expect(r))
    assert got == pytest.approx(want), (team, groups)


def test_group_explore_shows_only_granted_groups(pg, pg_project, truth_rows):
    r = Renderer(pg_project, "kong_consumer_groups", "postgres")
    rows = pg.rows(r.query(["consumer_group"], ["request_count"],
                           user_attributes={"kong_team": "%", "kong_consumer_groups": "%|gold|%"}))
    assert {g for g, _ in rows} == {"gold"}
    assert float(rows[0][1]) == pytest.approx(sum(t["sample_weight"] for t in truth_rows if has(t["consumer_groups"], "gold")))


def test_pipeline_health_is_for_full_access_only(pg, pg_project):
    r = Renderer(pg_project, "kong_pipeline_health", "postgres")
    assert pg.rows(r.query([], ["batch_count"], user_attributes=ALL))[0][0] == 20
    for attrs in ({"kong_team": "commerce", "kong_consumer_groups": "%"},
                  {"kong_team": "%", "kong_consumer_groups": "%|gold|%"}):
        assert pg.rows(r.query([], ["batch_count"], user_attributes=attrs))[0][0] == 0


@pytest.mark.parametrize("team,groups", [("%", "%"), ("platform", "%"), ("commerce", "%"), ("%", "%|gold|%"), ("%", "||")])
def test_ai_usage_explore_is_filtered_like_the_others(pg, pg_project, truth_rows, team, groups):
    """The AI explore extends the base: the same team and group filters,
    over the AI Gateway requests only."""
    r = Renderer(pg_project, "kong_ai_usage", "postgres")
    attrs = {"kong_team": team, "kong_consumer_groups": groups}
    ((count, tokens),) = pg.rows(r.query([], ["request_count", "ai_tokens_total"], user_attributes=attrs))

    def visible(t):
        in_team = team == "%" or t["workspace"] == team
        g = t["consumer_groups"]
        in_groups = groups == "%" or (groups == "||" and not g) or (groups == "%|gold|%" and has(g, "gold"))
        return t.get("ai") is not None and in_team and in_groups

    rows = [t for t in truth_rows if visible(t)]
    assert float(count) == pytest.approx(sum(t["sample_weight"] for t in rows))
    assert float(tokens) == pytest.approx(sum(t["ai"]["total_tokens"] * t["sample_weight"] for t in rows))
    if team == "commerce":
        assert not rows, "the AI routes belong to the platform team"
    else:
        assert rows
