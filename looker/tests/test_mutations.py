"""The checks can fail: each test breaks one thing in a copy of the
project and asserts that the matching checker reports it (and that the
untouched project passes the same checker)."""

import shutil
from pathlib import Path

import pytest

from lkcheck import checks, ddl
from lkcheck.project import Project
from lkcheck.render import Renderer

LOOKER = Path(__file__).resolve().parent.parent
ALL = {"kong_team": "%", "kong_consumer_groups": "%"}


def mutate(tmp_path, rel, old, new, overrides=None) -> Project:
    """A copy of looker/ (without tests) with `old` replaced by `new`, once,
    in file `rel`."""
    root = tmp_path / "looker"
    shutil.copytree(LOOKER, root, ignore=shutil.ignore_patterns("tests"))
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, f"{rel}: {old!r} occurs {text.count(old)} times"
    path.write_text(text.replace(old, new))
    return Project(root, overrides)


def reported(problems, *needles):
    text = "\n".join(problems)
    assert problems, "the mutation went unnoticed"
    for n in needles:
        assert n in text, f"{n!r} not in:\n{text}"


REFINED = "views/refined/kong_looker_requests.view.lkml"
BASE = "explores/kong_looker_base.explore.lkml"
TRAFFIC = "dashboards/kong_api_traffic.dashboard.lookml"


@pytest.fixture(scope="module")
def clean():
    return Project(LOOKER)


def test_broken_field_reference(tmp_path, clean):
    assert not checks.view_problems(clean)
    p = mutate(tmp_path, REFINED, "    sql: ${sample_weight} ;;\n", "    sql: ${sample_weigth} ;;\n")
    reported(checks.view_problems(p), "kong_looker_requests.request_count", "${sample_weigth} does not resolve")


def test_broken_drill_set(tmp_path):
    p = mutate(tmp_path, REFINED, "  set: request_detail {", "  set: request_details {")
    reported(checks.view_problems(p), "drill set request_detail* is not defined")


def test_broken_dashboard_field(tmp_path, clean):
    assert not checks.dashboard_problems(clean)
    p = mutate(tmp_path, TRAFFIC, "kong_looker.latency_total_p99_ms]\n    listen",
               "kong_looker.latency_total_p999_ms]\n    listen")
    reported(checks.dashboard_problems(p), "field kong_looker.latency_total_p999_ms does not resolve")


def test_dashboard_listens_to_a_missing_filter(tmp_path):
    p = mutate(tmp_path, "dashboards/kong_pipeline_health.dashboard.lookml",
               "  - name: kong_node\n", "  - name: kong_nodes\n")
    reported(checks.dashboard_problems(p), "listens to unknown dashboard filter kong_node")


def test_dashboard_names_a_missing_explore(tmp_path):
    p = mutate(tmp_path, "dashboards/kong_identity_access.dashboard.lookml",
               "    explore: kong_consumer_groups\n", "    explore: kong_consumer_group\n")
    reported(checks.dashboard_problems(p), "explore 'kong_consumer_group' is not an explore users can open")


def test_dropped_access_filter(tmp_path, clean):
    assert not checks.access_problems(clean)
    p = mutate(tmp_path, BASE, """  access_filter: {
    field: kong_looker.consumer_group_access_key
    user_attribute: kong_consumer_groups
  }
""", "")
    problems = checks.access_problems(p)
    for explore in ("kong_requests", "kong_consumer_groups", "kong_pipeline_health"):
        reported(problems, f"explore {explore}: no access_filter on user attribute kong_consumer_groups")


def test_explore_that_skips_the_base(tmp_path):
    p = mutate(tmp_path, "explores/kong_pipeline_health.explore.lkml",
               "  extends: [kong_looker_base]\n", "  view_name: kong_looker\n")
    reported(checks.access_problems(p), "kong_pipeline_health: does not extend an extension: required base",
             "kong_pipeline_health: no access_filter on user attribute kong_team")


def test_explore_with_its_own_filter(tmp_path):
    p = mutate(tmp_path, "explores/kong_consumer_groups.explore.lkml", "  from: kong_looker_requests_by_group\n",
               "  from: kong_looker_requests_by_group\n  access_filter: {\n    field: kong_looker.workspace\n"
               "    user_attribute: kong_team\n  }\n")
    reported(checks.access_problems(p), "sets its own access_filter on kong_team")


def test_access_filter_on_a_missing_field(tmp_path):
    p = mutate(tmp_path, BASE, "field: kong_looker.team_access_key", "field: kong_looker.team_key")
    reported(checks.explore_problems(p), "access filter field kong_looker.team_key does not resolve")


def test_rollup_without_the_access_keys(tmp_path):
    p = mutate(tmp_path, "explores/kong_requests.explore.lkml",
               "        kong_looker.team_access_key,\n", "")
    reported(checks.explore_problems(p), "lacks access filter field kong_looker.team_access_key")


def test_rollup_of_a_percentile(tmp_path):
    p = mutate(tmp_path, "explores/kong_requests.explore.lkml",
               "        kong_looker.stored_row_count,\n", "        kong_looker.latency_total_p95_ms,\n")
    reported(checks.explore_problems(p), "rolls up kong_looker.latency_total_p95_ms")


def test_join_under_percentiles(tmp_path):
    p = mutate(tmp_path, "explores/kong_requests.explore.lkml", "  view_label: \"Requests\"\n",
               "  view_label: \"Requests\"\n  join: kong_looker_batches {\n"
               "    sql_on: ${kong_looker.instance_id} = ${kong_looker_batches.instance_id} ;;\n"
               "    relationship: many_to_one\n  }\n")
    reported(checks.explore_problems(p), "joins would turn its percentiles into percentile_distinct")


def test_undeclared_constant(tmp_path, clean):
    assert not checks.constant_problems(clean)
    p = mutate(tmp_path, "kong_looker.model.lkml", "@{SCHEMA_NAME}.@{BATCHES_TABLE}", "@{SCHEMA_NAME}.@{BATCH_TABLE}")
    reported(checks.constant_problems(p), "@{BATCH_TABLE} is not declared")


def test_connection_constant_must_be_required(tmp_path):
    p = mutate(tmp_path, "manifest.lkml", "  export: override_required\n", "  export: override_optional\n")
    reported(checks.constant_problems(p), "CONNECTION_NAME must be export: override_required")


def test_marketplace_out_of_step(tmp_path):
    p = mutate(tmp_path, "marketplace.json", '"BATCHES_TABLE"', '"BATCH_TABLE"')
    reported(checks.constant_problems(p), "marketplace.json declares")


def test_broken_liquid_reference(tmp_path, clean):
    assert not checks.liquid_problems(clean)
    p = mutate(tmp_path, REFINED, "kong_looker.started_minute._is_selected", "kong_looker.started_minutes._is_selected")
    reported(checks.liquid_problems(p), "Liquid names kong_looker.started_minutes")


def test_broken_liquid_syntax(tmp_path):
    p = mutate(tmp_path, "views/refined/kong_looker_batches.view.lkml",
               "         {% elsif _dialect._name == 'bigquery_standard_sql' %}\n           TIMESTAMP_DIFF(CURRENT",
               "         {% elif _dialect._name == 'bigquery_standard_sql' %}\n           TIMESTAMP_DIFF(CURRENT")
    reported(checks.liquid_problems(p), "unsupported Liquid tag")


def test_missing_include(tmp_path, clean):
    assert not checks.include_problems(clean)
    p = mutate(tmp_path, "explores/kong_pipeline_health.explore.lkml",
               'include: "/views/derived/kong_looker_batch_health.view.lkml"',
               'include: "/views/derived/kong_looker_batch_healthy.view.lkml"')
    reported(checks.include_problems(p), "matches no file", "uses view kong_looker_batch_health without including it")


def test_unparseable_lkml(tmp_path, clean):
    assert not checks.parse_problems(clean)
    p = mutate(tmp_path, "views/raw/kong_looker_batches.view.lkml", "    sql: ${TABLE}.state ;;\n  }\n}\n",
               "    sql: ${TABLE}.state ;;\n  }\n")
    reported(checks.parse_problems(p), "kong_looker_batches.view.lkml: lkml cannot parse it")


def test_field_without_a_name(tmp_path):
    p = mutate(tmp_path, "views/raw/kong_looker_batches.view.lkml", "  dimension: records {\n", "  dimension: {\n")
    reported(checks.load_problems(p), "kong_looker_batches: a dimension without a name")


def test_unparseable_dashboard(tmp_path):
    p = mutate(tmp_path, TRAFFIC, "  layout: newspaper\n", "  layout: newspaper\n   bad: [\n")
    reported(checks.parse_problems(p), "kong_api_traffic.dashboard.lookml: not valid YAML")


def test_identifier_without_the_grant(tmp_path, clean):
    assert not checks.grant_problems(clean)
    p = mutate(tmp_path, REFINED, """    description: "OAuth client id of the calling application. Restricted: needs kong_data_role security or platform."
    required_access_grants: [kong_client_identity]
""", """    description: "OAuth client id of the calling application."
""")
    reported(checks.grant_problems(p), "kong_looker_requests.client_id shows client_id without the kong_client_identity grant")


def test_column_missing_from_the_ddl(tmp_path, clean):
    tables = {"looker/ddl/clickhouse.sql": ddl.file_tables(LOOKER / "ddl" / "clickhouse.sql")}
    assert not checks.column_problems(clean, tables)
    p = mutate(tmp_path, "views/raw/kong_looker_requests.view.lkml",
               "sql: ${TABLE}.latency_total_us ;;", "sql: ${TABLE}.latency_total_usec ;;")
    reported(checks.column_problems(p, tables), "kong_looker_requests has no column latency_total_usec")


def test_sql_that_only_fails_on_the_database(tmp_path, pg, pg_project):
    """A PostgreSQL branch with a typo passes every static check but fails
    when it runs; the SQL tests run every field, so they catch it."""
    p = mutate(tmp_path, "views/refined/kong_looker_batches.view.lkml",
               "EXTRACT(EPOCH FROM CURRENT_TIMESTAMP - MAX(${committed_raw}))",
               "EXTRACT(EPOCH FROM CURRENT_TIMESTAMP - MAX(${committed_raw})))",
               overrides={"SCHEMA_NAME": "public"})
    assert not checks.all_problems(p)
    import psycopg

    sql = Renderer(p, "kong_pipeline_health", "postgres").query([], ["freshness_lag_seconds"], user_attributes=ALL)
    with pytest.raises(psycopg.errors.SyntaxError):
        pg.rows(sql)


def test_unbracketed_sum_gives_a_wrong_rate(tmp_path, pg):
    """A precedence slip runs fine and returns a wrong number; the pinned
    drop rate catches it."""
    p = mutate(tmp_path, "views/refined/kong_looker_batches.view.lkml",
               "    sql: (${drops_buffer_full_total} + ${drops_dispatch_failed_total} + ${drops_capture_error_total} + ${drops_instance_reset_total}) ;;",
               "    sql: ${drops_buffer_full_total} + ${drops_dispatch_failed_total} + ${drops_capture_error_total} + ${drops_instance_reset_total} ;;",
               overrides={"SCHEMA_NAME": "public"})
    sql = Renderer(p, "kong_pipeline_health", "postgres").query([], ["drop_rate"], user_attributes=ALL)
    ((rate,),) = pg.rows(sql)
    assert float(rate) != pytest.approx(17 / 20017)
