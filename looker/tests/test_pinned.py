"""Pinned queries return the numbers the traffic generator implies, on
PostgreSQL (exactly) and on ClickHouse (the same data in chdb)."""

from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from lkcheck import truth
from lkcheck.render import Renderer

ALL = {"kong_team": "%", "kong_consumer_groups": "%"}


def run(engine, explore, dims, measures, **kw):
    dialect, project, rows = engine
    sql = Renderer(project, explore, dialect).query(dims, measures, user_attributes=ALL, **kw)
    return rows(sql)


def as_dict(rows):
    return {r[0]: float(r[1]) for r in rows}


def test_request_count(engine, truth_rows, pg):
    ((requests, stored),) = run(engine, "kong_requests", [], ["request_count", "stored_row_count"])
    assert float(requests) == pytest.approx(truth.weight(truth_rows))
    assert stored == len(truth_rows)
    if pg.summary is not None:
        # Seeded here: 20,000 filter records and 300 http-log rows.
        assert stored == 20300


def test_p95_total_latency_by_route(engine, truth_rows):
    got = as_dict(run(engine, "kong_requests", ["route_name"], ["latency_total_p95_ms"]))
    want = truth.p95_total_latency_by_route(truth_rows)
    assert set(got) == set(want)
    for route, value in want.items():
        # ClickHouse's quantile samples past 8,192 values; every route here
        # has fewer, so both engines interpolate the same way.
        assert got[route] == pytest.approx(value, rel=1e-9), route


def test_error_rate_by_consumer_group(engine, truth_rows):
    got = as_dict(run(engine, "kong_consumer_groups", ["consumer_group"], ["error_5xx_rate"]))
    want = truth.error_5xx_rate_by_consumer_group(truth_rows)
    assert set(got) == set(want) and len(want) == 7  # six groups and none
    for g, value in want.items():
        assert got[g] == pytest.approx(value, rel=1e-9), g


def test_failed_attempts_by_client_id(engine, truth_rows):
    got = as_dict(run(engine, "kong_requests", ["client_id"], ["auth_failure_count"],
                      filters_={"auth_failure_count": ">0"}))
    want = truth.auth_failures_by(truth_rows, "client_id")
    assert got == pytest.approx(want)
    assert sum(v for k, v in want.items() if k) > 0, "some failed attempts carry a client id"


def test_failed_attempts_by_credential(engine, truth_rows):
    got = as_dict(run(engine, "kong_requests", ["credential"], ["auth_failure_count"],
                      filters_={"is_auth_failure": "Yes"}))
    assert got == pytest.approx(truth.auth_failures_by(truth_rows, "credential"))


def test_ai_agent_traffic_by_family(engine, truth_rows):
    got = as_dict(run(engine, "kong_requests", ["agent_category"], ["request_count"],
                      filters_={"is_ai_agent": "Yes"}))
    ai = ("ai_crawler", "ai_search", "ai_assistant", "mcp_client")
    want = {k: truth.weight(g) for k, g in truth.group(truth_rows, lambda r: r["agent_category"]).items() if k in ai}
    assert got == pytest.approx(want) and set(want) == set(ai)


def test_error_counts_and_bytes(engine, truth_rows):
    ((e5, e4, auth, bin_, bout),) = run(engine, "kong_requests", [], [
        "error_5xx_count", "error_4xx_count", "auth_failure_count", "request_bytes_total", "response_bytes_total"])
    w = lambda pred: sum(r["sample_weight"] for r in truth_rows if pred(r))
    assert float(e5) == w(lambda r: r["status"] >= 500)
    assert float(e4) == w(lambda r: 400 <= r["status"] < 500)
    assert float(auth) == w(lambda r: r["status"] in (401, 403))
    assert float(bin_) == sum(r["request_bytes"] * r["sample_weight"] for r in truth_rows)
    assert float(bout) == sum(r["response_bytes"] * r["sample_weight"] for r in truth_rows)


def test_upstream_and_gateway_latency(engine, truth_rows):
    ((up95, gw95, up_avg, gw_avg),) = run(engine, "kong_requests", [], [
        "latency_upstream_p95_ms", "latency_gateway_p95_ms", "latency_upstream_avg_ms", "latency_gateway_avg_ms"])
    ups = [r["latency_upstream_us"] / 1000.0 for r in truth_rows if r["latency_upstream_us"] is not None]
    gws = [(r["latency_total_us"] - (r["latency_upstream_us"] or 0)) / 1000.0 for r in truth_rows]
    if engine[0] == "postgres":  # ClickHouse's quantile samples these 20,000 values
        assert float(up95) == pytest.approx(truth.percentile_cont(ups, 0.95))
        assert float(gw95) == pytest.approx(truth.percentile_cont(gws, 0.95))
    assert float(up_avg) == pytest.approx(sum(ups) / len(ups))
    assert float(gw_avg) == pytest.approx(sum(gws) / len(gws))


def started(rows):
    ms = [r["started_at_ms"] for r in rows]
    return min(ms) / 1000.0, max(ms) / 1000.0


def test_requests_per_second_over_the_data(engine, truth_rows):
    """Without a time filter or timeframe: over the span of the requests,
    ending now at the latest (the seed's last requests start in the
    future)."""
    first, last = started(truth_rows)
    before = datetime.now(timezone.utc).timestamp()
    ((rps,),) = run(engine, "kong_requests", [], ["requests_per_second"])
    after = datetime.now(timezone.utc).timestamp()
    n = truth.weight(truth_rows)
    assert n / (min(last, after) - first) <= float(rps) * (1 + 1e-9)
    assert float(rps) <= n / (min(last, before) - first) * (1 + 1e-9)


def test_requests_per_second_per_hour(engine, truth_rows):
    got = run(engine, "kong_requests", ["started_hour"], ["request_count", "requests_per_second"])
    hours = {r["started_at_ms"] // 3_600_000 for r in truth_rows}
    assert len(got) == len(hours)
    for _, count, rps in got:
        assert float(rps) == pytest.approx(float(count) / 3600.0)


def test_requests_per_second_over_the_filter_window(engine, truth_rows):
    """A six-hour window divides by six hours, or by the part of it that has
    passed: the pipeline's rows start minutes ago, so its window can run
    past now."""
    first, _ = started(truth_rows)
    hour = datetime.fromtimestamp(first, timezone.utc).replace(minute=0, second=0, microsecond=0)
    start = hour + timedelta(hours=1)
    if start >= datetime.now(timezone.utc):
        start = hour
    end = start + timedelta(hours=6)
    before = datetime.now(timezone.utc)
    ((rps,),) = run(engine, "kong_requests", [], ["requests_per_second"], time_window={"started_time": (start, end)})
    after = datetime.now(timezone.utc)
    lo, hi = start.timestamp() * 1000, end.timestamp() * 1000
    inside = truth.weight([r for r in truth_rows if lo <= r["started_at_ms"] < hi])
    passed = lambda now: (min(end, now) - start).total_seconds()
    assert inside / passed(after) * (1 - 1e-9) <= float(rps) <= inside / passed(before) * (1 + 1e-9)
    # A window that runs into the future ends now.
    future = datetime.now(timezone.utc) + timedelta(days=1)
    before = datetime.now(timezone.utc)
    ((rps,),) = run(engine, "kong_requests", [], ["requests_per_second"], time_window={"started_date": (start, future)})
    after = datetime.now(timezone.utc)
    inside = truth.weight([r for r in truth_rows if r["started_at_ms"] >= lo])
    assert inside / (after - start).total_seconds() <= float(rps) <= inside / (before - start).total_seconds()


def test_weighted_rows_count_for_what_they_stand_for(pg, pg_project, truth_rows):
    if not hasattr(pg, "conn"):
        pytest.skip("changes rows in PostgreSQL; the pipeline filled ClickHouse")
    """Rows of a sampled chain carry weight 1/rate. The seed samples
    nothing, so this reweights some 2xx rows inside a transaction that is
    rolled back, and checks every weighted measure against the truth."""
    fours = lambda r: r["status"] < 400 and r["request_id"] and r["request_id"][-1] in "0123"
    weighted = [dict(r, sample_weight=4.0 if fours(r) else r["sample_weight"]) for r in truth_rows]
    r = Renderer(pg_project, "kong_requests", "postgres")
    sql = r.query([], ["request_count", "stored_row_count", "error_5xx_rate", "latency_total_avg_ms",
                       "latency_upstream_avg_ms", "latency_gateway_avg_ms", "response_bytes_total"], user_attributes=ALL)
    w = truth.weight
    with pg.conn.transaction() as tx:
        n = pg.conn.execute(
            "UPDATE kong_looker_requests SET sample_weight = 4 "
            "WHERE status < 400 AND right(request_id, 1) IN ('0', '1', '2', '3')").rowcount
        assert n == sum(1 for x in truth_rows if fours(x)) > len(truth_rows) // 20
        ((count, stored, e5, tot, up, gw, out),) = pg.rows(sql)
        raise psycopg.Rollback(tx)
    assert float(count) == pytest.approx(w(weighted)) and stored == len(truth_rows)
    assert float(e5) == pytest.approx(w([x for x in weighted if x["status"] >= 500]) / w(weighted))
    avg = lambda vals: sum(v * x["sample_weight"] for v, x in vals) / sum(x["sample_weight"] for _, x in vals)
    assert float(tot) == pytest.approx(avg([(x["latency_total_us"] / 1000, x) for x in weighted]))
    assert float(up) == pytest.approx(avg([(x["latency_upstream_us"] / 1000, x) for x in weighted if x["latency_upstream_us"] is not None]))
    assert float(gw) == pytest.approx(avg([((x["latency_total_us"] - (x["latency_upstream_us"] or 0)) / 1000, x) for x in weighted]))
    assert float(out) == pytest.approx(sum(x["response_bytes"] * x["sample_weight"] for x in weighted))
