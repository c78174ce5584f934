"""The SQL of every dimension and measure of every explore, with Looker's
substitutions applied (constants, Liquid for the dialect, ${TABLE},
${field}, access filters), runs on the seeded PostgreSQL and in chdb.
BigQuery and Snowflake renderings are only checked to render."""

from pathlib import Path

import pytest

from conftest import project_for
from lkcheck.project import Project
from lkcheck.render import Renderer

LOOKER = Path(__file__).resolve().parent.parent
ALL = {"kong_team": "%", "kong_consumer_groups": "%"}
_project = Project(LOOKER)
CASES = [
    (ex.name, name, f.kind)
    for ex in _project.concrete_explores()
    for name, f in _project.explore_view(ex).fields().items()
    if f.kind in ("dimension", "measure")
]


def field_query(project, dialect, explore, name, kind):
    r = Renderer(project, explore, dialect)
    if kind == "dimension":
        return r.query([name], [], user_attributes=ALL) + "\nLIMIT 5"
    return r.query([], [name], user_attributes=ALL)


@pytest.mark.parametrize("explore,name,kind", CASES, ids=[f"{e}.{n}" for e, n, _ in CASES])
def test_runs_on_postgres(pg, pg_project, explore, name, kind):
    rows = pg.rows(field_query(pg_project, "postgres", explore, name, kind))
    assert rows, "no rows"


@pytest.mark.parametrize("explore,name,kind", CASES, ids=[f"{e}.{n}" for e, n, _ in CASES])
def test_runs_on_clickhouse(ch, ch_project, explore, name, kind):
    rows = ch.rows(field_query(ch_project, "clickhouse", explore, name, kind))
    assert rows, "no rows"


@pytest.mark.parametrize("dialect", ["bigquery", "snowflake"])
def test_renders_for_untested_dialects(dialect):
    project = Project(LOOKER)
    for explore, name, kind in CASES:
        sql = field_query(project, dialect, explore, name, kind)
        assert "${" not in sql and "{%" not in sql and "@{" not in sql, (explore, name)


@pytest.mark.parametrize("dialect", ["postgres", "clickhouse"])
def test_dialect_branches_differ(dialect):
    """The ClickHouse branches are the ones chdb runs: rendering for
    ClickHouse must not fall through to PostgreSQL's SQL."""
    project = project_for(dialect)
    sql = field_query(project, dialect, "kong_pipeline_health", "freshness_lag_seconds", "measure")
    assert ("now64" in sql) == (dialect == "clickhouse")


def test_datagroup_trigger_reads_the_newest_commit(pg, ch, pg_project, ch_project):
    for project, run in ((pg_project, pg.rows), (ch_project, ch.rows)):
        (group,) = project.model["datagroups"]
        (value,) = run(project.substitute_constants(group["sql_trigger"]))[0]
        newest = pg.summary["newest_commit"]  # 2026-11-29T03:50:26.793Z
        text = value if isinstance(value, str) else value.strftime("%Y-%m-%d %H:%M:%S.%f")
        assert text.replace("T", " ")[:23] == newest.replace("T", " ").rstrip("Z")[:23]


@pytest.mark.parametrize("dialect", ["postgres", "clickhouse"])
def test_aggregate_tables_run_and_add_up(dialect, pg, ch, pg_project, ch_project):
    """Each rollup's query runs, and re-aggregating its rows (as Looker does
    when it answers from the rollup) gives the table's own totals."""
    project, rows = (pg_project, pg.rows) if dialect == "postgres" else (ch_project, ch.rows)
    for ex in project.concrete_explores():
        for agg in ex.params.get("aggregate_tables", []):
            (q,) = agg["queries"]
            r = Renderer(project, ex, dialect)
            dims = [d.split(".", 1)[1] for d in q["dimensions"]]
            measures = [m.split(".", 1)[1] for m in q["measures"]]
            rollup = rows(r.query(dims, measures, user_attributes=ALL))
            assert rollup
            col = {m: len(dims) + i for i, m in enumerate(measures)}
            total = lambda m: sum(float(row[col[m]]) for row in rollup)
            direct = dict(zip(measures, rows(r.query([], measures, user_attributes=ALL))[0]))
            for m in measures:
                if project.explore_view(ex).fields()[m].type == "sum" or m == "stored_row_count":
                    assert total(m) == pytest.approx(float(direct[m])), m
            assert total("latency_total_weighted_ms") / total("request_count") == pytest.approx(float(direct["latency_total_avg_ms"]))
