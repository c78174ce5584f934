"""References resolve: fields, Liquid, constants, includes, explores and
dashboards; and the views follow the block's conventions."""

import pytest

from lkcheck import checks


@pytest.mark.parametrize(
    "check",
    [
        checks.load_problems,
        checks.parse_problems,
        checks.constant_problems,
        checks.include_problems,
        checks.view_problems,
        checks.liquid_problems,
        checks.model_problems,
        checks.explore_problems,
        checks.dashboard_problems,
    ],
    ids=lambda c: c.__name__,
)
def test_no_problems(project, check):
    problems = check(project)
    assert not problems, "\n".join(problems)


def test_raw_views_hidden_and_refined(project):
    for name in ("kong_looker_requests", "kong_looker_batches"):
        view = project.views[name]
        assert view.params.get("fields_hidden_by_default") == "yes"
        assert any(f.startswith("views/raw/") for f in view.files), view.files
        assert any(f.startswith("views/refined/") for f in view.files), f"{name} has no refinement"
        raw = project.files[f"views/raw/{name}.view.lkml"]["views"][0]
        assert not raw.get("measures"), "raw views mirror columns only"


def test_measures_the_issue_lists(project):
    fields = project.views["kong_looker_requests"].fields()
    wanted = [
        "request_count", "error_5xx_count", "error_5xx_rate", "error_4xx_count", "error_4xx_rate",
        "auth_failure_count",
        "latency_total_p50_ms", "latency_total_p95_ms", "latency_total_p99_ms", "latency_total_avg_ms",
        "latency_upstream_p50_ms", "latency_upstream_p95_ms", "latency_upstream_p99_ms", "latency_upstream_avg_ms",
        "latency_gateway_p50_ms", "latency_gateway_p95_ms", "latency_gateway_p99_ms", "latency_gateway_avg_ms",
        "request_bytes_total", "response_bytes_total", "distinct_consumers", "distinct_client_applications",
        "requests_per_second",
    ]
    missing = [w for w in wanted if w not in fields or fields[w].kind != "measure"]
    assert not missing, missing
    assert fields["request_count"].type == "sum" and fields["request_count"].sql == "${sample_weight}"
    for tf in ("raw", "time", "minute", "hour", "date", "week", "month"):
        assert f"started_{tf}" in fields


def test_dashboards_have_the_tiles(project):
    def elements(name):
        doc = project.dashboards[f"dashboards/{name}.dashboard.lookml"][0]
        return {e["name"]: e for e in doc["elements"]}

    traffic = elements("kong_api_traffic")
    assert {"requests_and_errors", "latency_spikes", "top_routes", "top_services", "slowest_routes"} <= set(traffic)
    spikes = traffic["latency_spikes"]["fields"]
    assert spikes == ["kong_looker.started_minute", "kong_looker.latency_total_p95_ms", "kong_looker.latency_total_p99_ms"]
    identity = elements("kong_identity_access")
    assert {"requests_by_consumer", "requests_by_consumer_group", "failed_by_client_id",
            "failed_by_credential", "auth_methods", "ai_agents_over_time"} <= set(identity)
    assert "kong_looker.agent_category" in identity["ai_agents_over_time"]["pivots"]
    pipeline = elements("kong_pipeline_health")
    assert {"freshness", "drops_by_reason", "missing_batches", "gaps_by_producer", "batches_per_producer"} <= set(pipeline)
