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


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
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
def ch(pg, tmp_path_factory):
    work = tmp_path_factory.mktemp("chdb")
    db = stores.ClickHouse(LOOKER / "ddl" / "clickhouse.sql", work)
    db.copy_from(pg, "kong_looker_requests")
    db.copy_from(pg, "kong_looker_batches")
    yield db
    db.session.close()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(params=["postgres", "clickhouse"])
def engine(request, pg, ch, pg_project, ch_project):
    """Each warehouse in turn: (dialect, project with its schema,
    run(sql) -> rows)."""
    if request.param == "postgres":
        return "postgres", pg_project, pg.rows
    return "clickhouse", ch_project, ch.rows
