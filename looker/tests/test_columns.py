"""The columns the views read exist in every DDL the project ships and in
the collector's own migrations; looker/ddl/postgresql.sql is the
collector's table; and the raw views mirror the tables."""

import re
from pathlib import Path

import pytest

from lkcheck import checks, ddl

LOOKER = Path(__file__).resolve().parent.parent
MIGRATIONS = LOOKER.parent / "collector" / "src" / "store" / "migrations"
TABLE_CONSTANTS = checks.TABLE_CONSTANTS
DDL_FILES = {
    "looker/ddl/postgresql.sql": LOOKER / "ddl" / "postgresql.sql",
    "looker/ddl/clickhouse.sql": LOOKER / "ddl" / "clickhouse.sql",
    "looker/ddl/bigquery.sql": LOOKER / "ddl" / "bigquery.sql",
    "looker/ddl/snowflake.sql": LOOKER / "ddl" / "snowflake.sql",
    # Every migration in order: later ones add columns (ALTER TABLE).
    "collector sqlite migration": sorted((MIGRATIONS / "sqlite").glob("*.sql")),
    "collector postgres migration": sorted((MIGRATIONS / "postgres").glob("*.sql")),
    "collector clickhouse migration": sorted((MIGRATIONS / "clickhouse").glob("*.sql")),
}


def test_views_read_columns(project):
    cols = checks.used_columns(project)
    assert ("kong_looker_requests", "sample_weight") in cols
    assert ("kong_looker_batches", "committed_at") in cols
    assert ("kong_looker_batches", "state") in cols
    assert ("kong_looker_requests", "consumer_groups") in cols


@pytest.mark.parametrize("label", list(DDL_FILES))
def test_every_used_column_exists(project, label):
    problems = checks.column_problems(project, {label: ddl.file_tables(DDL_FILES[label])})
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("label", [k for k in DDL_FILES if k != "collector postgres migration"])
def test_ddl_has_the_collectors_columns_in_order(label):
    want = ddl.file_tables(DDL_FILES["collector postgres migration"])
    got = ddl.file_tables(DDL_FILES[label])
    for table in TABLE_CONSTANTS.values():
        assert [c.name for c in got[table]] == [c.name for c in want[table]], f"{label}: {table}"


def test_migrations_add_the_batch_state_last():
    """The collector's migrations, read in order, end with `state` on the
    batches table in both stores (the DDL tests above compare against it)."""
    for label in ("collector sqlite migration", "collector postgres migration"):
        batches = ddl.file_tables(DDL_FILES[label])["kong_looker_batches"]
        assert batches[-1] == ddl.Column("state", batches[-1].type, True), label
        assert [c.name for c in batches].count("state") == 1, label


def test_postgres_ddl_is_the_migration_text():
    want = ddl.file_tables(DDL_FILES["collector postgres migration"])
    got = ddl.file_tables(DDL_FILES["looker/ddl/postgresql.sql"])
    for table in TABLE_CONSTANTS.values():
        assert got[table] == want[table], table


def test_postgres_ddl_creates_the_same_tables(pg):
    """Runs looker/ddl/postgresql.sql in a schema of its own and compares
    the catalog with what the collector's migration created."""
    catalog = """
        SELECT table_name, column_name, data_type, is_nullable, ordinal_position
        FROM information_schema.columns
        WHERE table_schema = %s AND table_name IN ('kong_looker_requests', 'kong_looker_batches')
        ORDER BY table_name, ordinal_position"""
    indexes = """
        SELECT tablename, indexdef FROM pg_indexes
        WHERE schemaname = %s AND tablename IN ('kong_looker_requests', 'kong_looker_batches')
        ORDER BY indexname"""
    pg.conn.execute("DROP SCHEMA IF EXISTS lookml_ddl CASCADE")
    pg.conn.execute("CREATE SCHEMA lookml_ddl")
    try:
        with pg.conn.transaction():
            pg.conn.execute("SET LOCAL search_path = lookml_ddl")
            pg.conn.execute((LOOKER / "ddl" / "postgresql.sql").read_text())
        assert pg.rows(catalog, ("lookml_ddl",)) == pg.rows(catalog, ("public",))
        ours = [(t, d.replace("lookml_ddl.", "")) for t, d in pg.rows(indexes, ("lookml_ddl",))]
        theirs = [(t, d.replace("public.", "")) for t, d in pg.rows(indexes, ("public",))]
        assert ours == theirs
    finally:
        pg.conn.execute("DROP SCHEMA lookml_ddl CASCADE")


def test_clickhouse_ddl_creates_the_same_columns(ch, pg):
    got = ch.rows("SELECT table, name FROM system.columns WHERE database = currentDatabase() "
                  "AND table IN ('kong_looker_requests', 'kong_looker_batches') ORDER BY table, position")
    want = pg.rows("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                   "AND table_name IN ('kong_looker_requests', 'kong_looker_batches') ORDER BY table_name, ordinal_position")
    assert got == [tuple(r) for r in want]


@pytest.mark.parametrize("view_name,table", [("kong_looker_requests", "kong_looker_requests"),
                                             ("kong_looker_batches", "kong_looker_batches")])
def test_raw_views_mirror_the_table(project, view_name, table):
    raw = project.files[f"views/raw/{view_name}.view.lkml"]["views"][0]
    mirrored = []
    for key in ("dimensions", "dimension_groups"):
        for f in raw.get(key, []):
            (col,) = re.findall(r"\$\{TABLE\}\.(\w+)", f["sql"])
            mirrored.append(col)
    want = [c.name for c in ddl.file_tables(DDL_FILES["collector postgres migration"])[table]]
    assert sorted(mirrored) == sorted(want)
