"""The AI usage explore's fields return the numbers the traffic generator
implies (the seed's AI Gateway share of the reference mix), on PostgreSQL
and on ClickHouse (chdb)."""

import math

import pytest

from lkcheck import truth
from lkcheck.render import Renderer

ALL = {"kong_team": "%", "kong_consumer_groups": "%"}


def run(engine, explore, dims, measures, **kw):
    dialect, project, rows = engine
    sql = Renderer(project, explore, dialect).query(dims, measures, user_attributes=ALL, **kw)
    return rows(sql)


def ai_rows(rows):
    return [r for r in rows if r.get("ai") is not None]


def wsum(rows, f):
    return sum(f(r) * r["sample_weight"] for r in rows)


def test_totals(engine, truth_rows):
    ai = ai_rows(truth_rows)
    assert len(ai) > 500, "the seed carries AI Gateway traffic"
    ((n, prompt, completion, tokens, billed, cost, billed_cost, blocks, mcp, unreadable),) = run(
        engine, "kong_ai_usage", [],
        ["ai_request_count", "ai_prompt_tokens_total", "ai_completion_tokens_total", "ai_tokens_total",
         "ai_billed_tokens_total", "ai_cost", "ai_billed_cost", "ai_guardrail_block_count",
         "ai_mcp_tool_call_count", "ai_unreadable_count"])
    hit = lambda r: r["ai"]["cache_status"] == "hit"
    assert float(n) == pytest.approx(truth.weight(ai))
    assert float(prompt) == wsum(ai, lambda r: r["ai"]["prompt_tokens"])
    assert float(completion) == wsum(ai, lambda r: r["ai"]["completion_tokens"])
    assert float(tokens) == wsum(ai, lambda r: r["ai"]["total_tokens"])
    assert float(billed) == wsum(ai, lambda r: 0 if hit(r) else r["ai"]["total_tokens"])
    assert float(cost) == pytest.approx(wsum(ai, lambda r: r["ai"]["cost_micros"]) / 1e6)
    assert float(billed_cost) == pytest.approx(wsum(ai, lambda r: 0 if hit(r) else r["ai"]["cost_micros"]) / 1e6)
    assert float(blocks) == wsum(ai, lambda r: r["ai"]["guardrail_blocks"]) > 0
    assert float(mcp) == wsum(ai, lambda r: r["ai"]["mcp_tool_calls"]) > 0
    assert float(unreadable) == 0
    # The requests explore counts every request; the AI explore only these.
    ((everything,),) = run(engine, "kong_requests", [], ["request_count"])
    assert float(everything) == pytest.approx(truth.weight(truth_rows))
    assert float(everything) > float(n)


def test_cost_and_tokens_by_model(engine, truth_rows):
    got = {m: (float(c), float(t)) for m, c, t in run(engine, "kong_ai_usage", ["ai_model"], ["ai_cost", "ai_tokens_total"])}
    model = lambda r: r["ai"]["response_model"] or r["ai"]["request_model"]
    want = {m: (wsum(g, lambda r: r["ai"]["cost_micros"]) / 1e6, wsum(g, lambda r: r["ai"]["total_tokens"]))
            for m, g in truth.group(ai_rows(truth_rows), model).items()}
    assert set(got) == set(want) and {"gpt-4o", "claude-sonnet-4", None} <= set(want)
    for m, (cost, tokens) in want.items():
        assert got[m][0] == pytest.approx(cost), m
        assert got[m][1] == tokens, m


def test_cost_by_team_and_agent_family(engine, truth_rows):
    got = {(w, a): float(c) for w, a, c in run(engine, "kong_ai_usage", ["workspace", "agent_category"], ["ai_cost"])}
    want = {k: wsum(g, lambda r: r["ai"]["cost_micros"]) / 1e6
            for k, g in truth.group(ai_rows(truth_rows), lambda r: (r["workspace"], r["agent_category"])).items()}
    assert got == pytest.approx(want)


def test_cost_by_consumer_group(engine, truth_rows):
    got = {g: float(c) for g, c in run(engine, "kong_consumer_groups", ["consumer_group"], ["ai_cost"],
                                         filters_={"is_ai_gateway": "Yes"})}
    want = {}
    for r in ai_rows(truth_rows):
        for g in r["consumer_groups"] or [None]:
            want[g] = want.get(g, 0) + r["ai"]["cost_micros"] * r["sample_weight"] / 1e6
    assert got == pytest.approx(want) and len(want) > 3


def test_cache_hit_rate_and_tokens_per_second(engine, truth_rows):
    ((rate, tps),) = run(engine, "kong_ai_usage", [], ["ai_cache_hit_rate", "ai_tokens_per_second"])
    looked = [r for r in ai_rows(truth_rows) if r["ai"]["cache_status"] is not None]
    assert float(rate) == pytest.approx(
        truth.weight([r for r in looked if r["ai"]["cache_status"] == "hit"]) / truth.weight(looked))
    timed = [r for r in ai_rows(truth_rows) if (r["ai"]["llm_latency_ms"] or 0) > 0]
    assert float(tps) == pytest.approx(
        wsum(timed, lambda r: r["ai"]["completion_tokens"]) / wsum(timed, lambda r: r["ai"]["llm_latency_ms"] / 1000.0))
    assert 0 < float(rate) < 1 and float(tps) > 10


def test_latency_per_model(engine, truth_rows):
    got = {m: (p50, ttft) for m, p50, ttft in run(
        engine, "kong_ai_usage", ["ai_model"], ["ai_llm_latency_p50_ms", "ai_time_to_first_token_p95_ms"])}
    model = lambda r: r["ai"]["response_model"] or r["ai"]["request_model"]
    for m, g in truth.group(ai_rows(truth_rows), model).items():
        llm = [r["ai"]["llm_latency_ms"] for r in g if r["ai"]["llm_latency_ms"] is not None]
        ttft = [r["ai"]["time_to_first_token_ms"] for r in g if r["ai"]["time_to_first_token_ms"] is not None]
        want = (truth.percentile_cont(llm, 0.5), truth.percentile_cont(ttft, 0.95))
        for got_v, want_v in zip(got[m], want):
            if want_v is None:
                assert got_v is None or math.isnan(float(got_v)), m
            else:
                # Both engines interpolate exactly below 8,192 values.
                assert float(got_v) == pytest.approx(want_v, rel=1e-9), m


def test_modes_blocks_and_cache_hits(engine, truth_rows):
    ai = ai_rows(truth_rows)
    got = {m: float(n) for m, n in run(engine, "kong_ai_usage", ["ai_request_mode"], ["ai_request_count"])}
    want = {m: truth.weight(g) for m, g in truth.group(ai, lambda r: r["ai"].get("request_mode")).items()}
    assert got == pytest.approx(want) and {"stream", "oneshot", None} == set(want)
    for flag, pred in (("is_ai_blocked", lambda r: r["ai"]["guardrail_blocks"] > 0),
                       ("is_ai_cache_hit", lambda r: r["ai"]["cache_status"] == "hit")):
        got = {k: float(n) for k, n in run(engine, "kong_ai_usage", [flag], ["ai_request_count"])}
        yes = truth.weight([r for r in ai if pred(r)])
        assert got == pytest.approx({"Yes": yes, "No": truth.weight(ai) - yes}), flag
        assert yes > 0, flag


def test_cost_per_token_and_latency_percentiles(engine, truth_rows):
    ai = ai_rows(truth_rows)
    ((per_1k, llm95, ttft50),) = run(engine, "kong_ai_usage", [], [
        "ai_cost_per_1k_tokens", "ai_llm_latency_p95_ms", "ai_time_to_first_token_p50_ms"])
    cost = wsum(ai, lambda r: r["ai"]["cost_micros"]) / 1e6
    assert float(per_1k) == pytest.approx(1000 * cost / wsum(ai, lambda r: r["ai"]["total_tokens"]))
    llm = [r["ai"]["llm_latency_ms"] for r in ai if r["ai"]["llm_latency_ms"] is not None]
    ttft = [r["ai"]["time_to_first_token_ms"] for r in ai if r["ai"]["time_to_first_token_ms"] is not None]
    assert len(llm) < 8192, "both engines interpolate exactly below 8,192 values"
    assert float(llm95) == pytest.approx(truth.percentile_cont(llm, 0.95), rel=1e-9)
    assert float(ttft50) == pytest.approx(truth.percentile_cont(ttft, 0.5), rel=1e-9)
