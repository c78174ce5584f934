"""Shared fixtures: the project as loaded from looker/, and, once per
session, a seeded PostgreSQL database and its copy in chdb."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from lkcheck import stores, truth
from lkcheck.project import Project

LOOKER = Path(__file__).resolve().parent.parent
REPO = LOOKER.parent

# How the SQL tests name the schema: an importing project overrides the
# constant the same way.
SCHEMAS = {"postgres": "public", "clickhouse": "default"}


@pytest.fixture(scope="session")
def looker_dir() -> Path:
    return LOOKER


@pytest.fixture(scope="session")
def project() -> Project:
    return Project(LOOKER)


def project_for(dialect: str) -> Project:
    return Project(LOOKER, {"SCHEMA_NAME": SCHEMAS[dialect]})


@pytest.fixture(scope="session")
def pg_project() -> Project:
    return project_for("postgres")


@pytest.fixture(scope="session")
def ch_project() -> Project:
    return project_for("clickhouse")


# The end-to-end tests fill a database through the whole pipeline and run
# the pinned queries against it with these two set.
EXISTING_STORE_ENV = "KONG_LOOKER_LOOKML_STORE"
EXISTING_TRUTH_ENV = "KONG_LOOKER_LOOKML_TRUTH"
# Or a ClickHouse database the pipeline filled (http://USER@HOST:PORT/DB):
# the pinned queries then run on its rows, copied as they are (duplicates
# and keys included) into chdb (current ClickHouse), and PostgreSQL is not
# involved.
EXISTING_CLICKHOUSE_ENV = "KONG_LOOKER_LOOKML_CLICKHOUSE"


@pytest.fixture(scope="session")
def ch_server():
    url = os.environ.get(EXISTING_CLICKHOUSE_ENV)
    return stores.ClickHouseServer(url, Path(os.environ[EXISTING_TRUTH_ENV])) if url else None


@pytest.fixture(scope="session")
def pg(tmp_path_factory, ch_server):
    if ch_server is not None:
        # What the tests read of `pg` besides queries: the truth, no seed summary.
        yield ch_server
        return
    existing = os.environ.get(EXISTING_STORE_ENV)
    if existing:
        db = stores.ExistingPostgres(existing, Path(os.environ[EXISTING_TRUTH_ENV]))
        yield db
        db.drop()
        return
    url = os.environ.get(stores.POSTGRES_ENV)
    if not url:
        pytest.fail(stores.HOW_TO_START, pytrace=False)
    db = stores.SeededPostgres(url, REPO, tmp_path_factory.mktemp("seed"))
    yield db
    db.drop()


@pytest.fixture(scope="session")
def truth_rows(pg) -> list[dict]:
    return truth.load(pg.truth_path)


@pytest.fixture(scope="session")
def ch(pg, ch_server, tmp_path_factory):
    work = tmp_path_factory.mktemp("chdb")
    db = stores.ClickHouse(LOOKER / "ddl" / "clickhouse.sql", work)
    if ch_server is not None:
        db.copy_rows_from_server(ch_server)
    else:
        db.copy_from(pg, "kong_looker_requests")
        db.copy_from(pg, "kong_looker_batches")
    yield db
    db.session.close()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(params=["postgres", "clickhouse"])
def engine(request, ch_server, pg_project, ch_project):
    """Each warehouse in turn: (dialect, project with its schema,
    run(sql) -> rows). With a ClickHouse database the pipeline filled, only
    ClickHouse: its rows in chdb. (Looker's ClickHouse SQL, with positional
    GROUP BY and now64, needs a current server; 18.16 runs neither.)"""
    if request.param == "postgres":
        if ch_server is not None:
            pytest.skip("the pipeline filled ClickHouse, not PostgreSQL")
        return "postgres", pg_project, request.getfixturevalue("pg").rows
    return "clickhouse", ch_project, request.getfixturevalue("ch").rows
