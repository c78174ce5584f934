"""Every LookML file parses, every dashboard is YAML, and the project has
the shape of a Looker block."""

from pathlib import Path

import lkml
import pytest
import yaml

LOOKER = Path(__file__).resolve().parent.parent
LKML_FILES = sorted(p.relative_to(LOOKER).as_posix() for p in LOOKER.rglob("*.lkml") if "tests" not in p.parts)
DASHBOARDS = sorted(p.relative_to(LOOKER).as_posix() for p in LOOKER.rglob("*.dashboard.lookml"))


@pytest.mark.parametrize("rel", LKML_FILES)
def test_lkml_parses(rel):
    parsed = lkml.load((LOOKER / rel).read_text())
    assert parsed, f"{rel} parsed to nothing"


@pytest.mark.parametrize("rel", DASHBOARDS)
def test_dashboard_is_yaml(rel):
    doc = yaml.safe_load((LOOKER / rel).read_text())
    assert isinstance(doc, list) and len(doc) == 1 and "dashboard" in doc[0], rel
    assert doc[0]["dashboard"] == Path(rel).name[: -len(".dashboard.lookml")], "dashboard id matches its file name"


def test_block_layout():
    expected = [
        "manifest.lkml",
        "marketplace.json",
        "kong_looker.model.lkml",
        "README.md",
        "views/raw/kong_looker_requests.view.lkml",
        "views/raw/kong_looker_batches.view.lkml",
        "views/refined/kong_looker_requests.view.lkml",
        "views/refined/kong_looker_batches.view.lkml",
        "dashboards/kong_api_traffic.dashboard.lookml",
        "dashboards/kong_identity_access.dashboard.lookml",
        "dashboards/kong_pipeline_health.dashboard.lookml",
        "ddl/postgresql.sql",
        "ddl/clickhouse.sql",
        "ddl/bigquery.sql",
        "ddl/snowflake.sql",
    ]
    missing = [p for p in expected if not (LOOKER / p).is_file()]
    assert not missing, missing
    assert LKML_FILES and DASHBOARDS


def test_one_explore_per_file(project):
    for rel, data in project.files.items():
        if rel.startswith("explores/"):
            assert rel.endswith(".explore.lkml"), rel
            assert len(data.get("explores", [])) == 1, f"{rel} holds {len(data.get('explores', []))} explores"
    assert not [r for r, d in project.files.items() if d.get("explores") and not r.startswith("explores/")]
