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


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
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
