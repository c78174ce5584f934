"""The pipeline-health explore reports what the seed left behind: one
batch that reported drops (12 buffer full, 5 delivery failed) and a batch
its producer gave up on (a gap the drops explain), and one sequence number
that never arrived."""

import pytest

from lkcheck.render import Renderer

ALL = {"kong_team": "%", "kong_consumer_groups": "%"}


def run(engine, dims, measures):
    dialect, project, rows = engine
    return rows(Renderer(project, "kong_pipeline_health", dialect).query(dims, measures, user_attributes=ALL))


def test_drops_by_reason(engine, pg):
    ((full, failed, capture, reset, total, rate),) = run(engine, [], [
        "drops_buffer_full_total", "drops_dispatch_failed_total", "drops_capture_error_total",
        "drops_instance_reset_total", "drops_total", "drop_rate"])
    assert (full, failed, capture, reset) == (12, 5, 0, 0)
    assert (full, failed) == (pg.summary["drops_buffer_full"], pg.summary["drops_dispatch_failed"])
    assert total == 17
    assert float(rate) == pytest.approx(17 / (17 + 20000))


def test_sequence_gaps(engine, pg):
    ((missing, gaps, batches, producers, records),) = run(engine, [], [
        "missing_batches", "gap_count", "batch_count", "producer_count", "records_total"])
    assert (missing, gaps) == (1, 1) and missing == pg.summary["missing_batches"]
    assert (batches, producers, records) == (20, 2, 20000)


def test_batches_and_gaps_per_producer(engine):
    rows = run(engine, ["instance_id"], ["batch_count", "missing_batches", "drops_total"])
    # One producer reported the drops, the other skipped a sequence number.
    assert sorted((b, m, d) for _, b, m, d in rows) == [(10, 0, 17), (10, 1, 0)]


def test_missing_batch_sits_after_the_gap(engine):
    rows = run(engine, ["instance_id", "sequence"], ["missing_batches"])
    flagged = [(seq, m) for _, seq, m in rows if m]
    assert flagged == [(4, 1)]  # the producer skipped 3


def test_an_abandoned_batch_is_an_explained_gap(engine, pg):
    """Both producers lack sequence number 3: producer 0 reported giving
    up on it, producer 1's never arrived. The table holds a row for the
    abandoned one; the explore counts it neither as a batch nor as
    missing."""
    assert pg.rows("SELECT sequence, records FROM kong_looker_batches WHERE state = 'abandoned'") == [(3, 0)]
    assert pg.summary["abandoned_batches"] == 1
    rows = run(engine, ["instance_id", "sequence"], ["batch_count", "missing_batches"])
    by_producer = {}
    for instance, seq, count, missing in rows:
        assert count == 1
        by_producer.setdefault(instance, []).append((seq, missing))
    after = [(seq, 0) for seq in range(5, 12)]
    assert sorted(sorted(r) for r in by_producer.values()) == [
        [(1, 0), (2, 0), (4, 0)] + after,  # producer 0: 3 abandoned, explained
        [(1, 0), (2, 0), (4, 1)] + after,  # producer 1: 3 missing
    ]


def test_freshness_and_delivery(engine):
    ((lag, avg_delivery, max_delivery),) = run(engine, [], ["freshness_lag_seconds", "delivery_seconds_avg", "delivery_seconds_max"])
    assert 0 <= float(lag) < 900, "seeded at the start of this session"
    assert 0 <= float(avg_delivery) <= float(max_delivery) < 60
